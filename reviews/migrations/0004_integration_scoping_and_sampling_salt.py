"""Integration case scoping (per-system sharing flag) and a secret sampling salt per intervention point.

``AddField`` with a callable default evaluates it once for all existing rows, so
existing points would share one salt: the column is added empty, every existing
point gets its own salt, then the default becomes the generator.

Which integration submitted a case is already recorded (``Case.submitted_by``,
set by ingestion since the first migration): nothing to backfill.
"""

import secrets

import reviews.models
from django.db import migrations, models


def give_each_point_a_salt(apps, schema_editor):
    InterventionPoint = apps.get_model("reviews", "InterventionPoint")
    for point in InterventionPoint.objects.filter(sampling_salt="").only("pk").iterator():
        InterventionPoint.objects.filter(pk=point.pk).update(sampling_salt=secrets.token_hex(32))


class Migration(migrations.Migration):

    dependencies = [
        ('reviews', '0003_review_loop_alerts_comments_skips'),
    ]

    operations = [
        migrations.AddField(
            model_name='aisystem',
            name='share_cases_between_integrations',
            field=models.BooleanField(default=False, help_text='Let every integration linked to this system read and report outcomes for all of its cases, not only the ones it submitted.'),
        ),
        migrations.AddField(
            model_name='historicalaisystem',
            name='share_cases_between_integrations',
            field=models.BooleanField(default=False, help_text='Let every integration linked to this system read and report outcomes for all of its cases, not only the ones it submitted.'),
        ),
        migrations.AddField(
            model_name='historicalinterventionpoint',
            name='salt_rotated_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='interventionpoint',
            name='salt_rotated_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='interventionpoint',
            name='sampling_salt',
            field=models.CharField(default='', editable=False, max_length=128),
        ),
        migrations.RunPython(give_each_point_a_salt, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='interventionpoint',
            name='sampling_salt',
            field=models.CharField(default=reviews.models.new_sampling_salt, editable=False, max_length=128),
        ),
    ]

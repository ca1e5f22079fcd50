"""Load requirements catalog 2026.1 (EU AI Act, NIST AI RMF 1.0, ISO/IEC 42001 Annex A)."""

from django.db import migrations


def load(apps, schema_editor):
    from compliance.catalog import load_catalog, v2026_1

    load_catalog(v2026_1, apps=apps)


def unload(apps, schema_editor):
    CatalogVersion = apps.get_model("compliance", "CatalogVersion")
    Requirement = apps.get_model("compliance", "Requirement")
    Milestone = apps.get_model("compliance", "Milestone")
    catalog = CatalogVersion.objects.filter(version="2026.1").first()
    if catalog is not None:
        Requirement.related.through.objects.filter(from_requirement__catalog=catalog).delete()
        Requirement.objects.filter(catalog=catalog).delete()
        Milestone.objects.filter(catalog=catalog).delete()
        catalog.delete()


class Migration(migrations.Migration):

    dependencies = [
        ("compliance", "0002_catalog_obligations_fria"),
    ]

    operations = [
        migrations.RunPython(load, unload),
    ]

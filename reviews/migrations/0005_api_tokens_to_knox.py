"""Move DRF's plaintext API tokens into django-rest-knox's hashed, expiring table, then drop them.

Every existing key keeps working (integrations are not cut off by an upgrade): its
SHA-512 digest and 15-character prefix go into ``knox_authtoken``, with the expiry a
new token of its owner would get. Then ``authtoken_token`` — keys in clear — is
dropped. Nothing happens on a database that never had DRF's table.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import migrations
from django.utils import timezone

INTEGRATION = "integration"


def _move_tokens(apps: Any, schema_editor: Any) -> None:
    from knox.crypto import hash_token
    from knox.settings import CONSTANTS

    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    AuthToken = apps.get_model("knox", "AuthToken")
    Group = apps.get_model("auth", "Group")
    integration_ids = set(
        Group.objects.filter(name=INTEGRATION).values_list("user__id", flat=True)
    )
    now = timezone.now()
    integration_ttl = settings.HITL_TOKEN_TTL_INTEGRATION
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id, created FROM authtoken_token")
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        if user_id in integration_ids:
            expiry = now + integration_ttl if integration_ttl.total_seconds() > 0 else None
        else:
            expiry = now + settings.HITL_TOKEN_TTL
        token = AuthToken(digest=hash_token(key), token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
                          user_id=user_id, expiry=expiry)
        token.save()
        # ``created`` is auto_now_add: keep the original issue date.
        AuthToken.objects.filter(digest=token.digest).update(created=created)
    schema_editor.execute(schema_editor.sql_delete_table % {"table": schema_editor.quote_name("authtoken_token")})


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0004_integration_scoping_and_sampling_salt"),
        ("knox", "0009_extend_authtoken_field"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(_move_tokens, migrations.RunPython.noop)]

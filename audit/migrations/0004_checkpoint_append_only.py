"""Make signed checkpoints append-only at the database, like the chain they anchor.

A checkpoint is evidence: nothing may change or remove one. PostgreSQL refuses
UPDATE, DELETE and TRUNCATE (the test runner's TRUNCATE passes under the same
``hitl.allow_truncate`` setting as the event table's guard); SQLite refuses UPDATE
always and DELETE unless the test-only bypass row exists.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION audit_checkpoint_guard() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' AND coalesce(current_setting('hitl.allow_truncate', true), '') = 'on' THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'audit_checkpoint is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_checkpoint_append_only
  BEFORE UPDATE OR DELETE ON audit_checkpoint
  FOR EACH ROW EXECUTE FUNCTION audit_checkpoint_guard();
CREATE TRIGGER audit_checkpoint_no_truncate
  BEFORE TRUNCATE ON audit_checkpoint
  FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoint_guard();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS audit_checkpoint_append_only ON audit_checkpoint;
DROP TRIGGER IF EXISTS audit_checkpoint_no_truncate ON audit_checkpoint;
DROP FUNCTION IF EXISTS audit_checkpoint_guard();
"""

SQLITE_FORWARD = [
    """CREATE TRIGGER IF NOT EXISTS audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
       WHEN NOT EXISTS (SELECT 1 FROM audit_guard_bypass)
       BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only: DELETE refused'); END;""",
    """CREATE TRIGGER IF NOT EXISTS audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
       BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only: UPDATE refused'); END;""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS audit_checkpoint_no_delete;",
    "DROP TRIGGER IF EXISTS audit_checkpoint_no_update;",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(BACKWARD)
    elif vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_checkpoints_retention_biometric")]
    operations = [migrations.RunPython(forward, backward)]

"""Make the audit table append-only at the database (PostgreSQL).

The only UPDATEs allowed: the sealer's one update of an unsealed row (setting
seq, prev_hash, hash, sealed_at and nothing else), and a lawful purge that sets a
sealed event's payload to NULL (its SHA-256 stays, so the chain still verifies).
DELETE and TRUNCATE are refused. Test databases set ``hitl.allow_truncate`` so the
test runner can empty tables between tests; production databases never do.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION audit_event_guard() RETURNS trigger AS $$
DECLARE
  sealing_cols CONSTANT text[] := ARRAY['seq', 'prev_hash', 'hash', 'sealed_at'];
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'audit_auditevent is append-only: DELETE refused' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF OLD.seq IS NULL AND NEW.seq IS NOT NULL
     AND (to_jsonb(NEW) - sealing_cols) = (to_jsonb(OLD) - sealing_cols) THEN
    RETURN NEW;
  END IF;
  IF OLD.seq IS NOT NULL AND OLD.payload IS NOT NULL AND NEW.payload IS NULL
     AND (to_jsonb(NEW) - 'payload') = (to_jsonb(OLD) - 'payload') THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_auditevent is append-only: UPDATE refused' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION audit_event_truncate_guard() RETURNS trigger AS $$
BEGIN
  IF coalesce(current_setting('hitl.allow_truncate', true), '') = 'on' THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'audit_auditevent is append-only: TRUNCATE refused' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_event_append_only
  BEFORE UPDATE OR DELETE ON audit_auditevent
  FOR EACH ROW EXECUTE FUNCTION audit_event_guard();
CREATE TRIGGER audit_event_no_truncate
  BEFORE TRUNCATE ON audit_auditevent
  FOR EACH STATEMENT EXECUTE FUNCTION audit_event_truncate_guard();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_guard();
DROP FUNCTION IF EXISTS audit_event_truncate_guard();
"""

SQLITE_FORWARD = [
    # The embedded default gets the same guard in SQLite's dialect. SQLite has no
    # session settings, so the test runner's flush is let through by a row in a
    # table that only test set-up writes to.
    "CREATE TABLE IF NOT EXISTS audit_guard_bypass (enabled integer NOT NULL);",
    """CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON audit_auditevent
       WHEN NOT EXISTS (SELECT 1 FROM audit_guard_bypass)
       BEGIN SELECT RAISE(ABORT, 'audit_auditevent is append-only: DELETE refused'); END;""",
    """CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON audit_auditevent
       WHEN NOT (
         (OLD.seq IS NULL AND NEW.seq IS NOT NULL AND NEW.id = OLD.id AND NEW.at IS OLD.at
          AND NEW.action IS OLD.action AND NEW.payload IS OLD.payload
          AND NEW.payload_sha256 IS OLD.payload_sha256 AND NEW.actor_id IS OLD.actor_id
          AND NEW.actor_name IS OLD.actor_name AND NEW.actor_type IS OLD.actor_type
          AND NEW.object_type IS OLD.object_type AND NEW.object_id IS OLD.object_id
          AND NEW.object_label IS OLD.object_label AND NEW.system_id IS OLD.system_id
          AND NEW.case_id IS OLD.case_id AND NEW.request_id IS OLD.request_id AND NEW.reason IS OLD.reason)
         OR
         (OLD.seq IS NOT NULL AND OLD.payload IS NOT NULL AND NEW.payload IS NULL AND NEW.seq IS OLD.seq
          AND NEW.hash IS OLD.hash AND NEW.prev_hash IS OLD.prev_hash AND NEW.at IS OLD.at
          AND NEW.action IS OLD.action AND NEW.payload_sha256 IS OLD.payload_sha256
          AND NEW.actor_id IS OLD.actor_id AND NEW.actor_name IS OLD.actor_name
          AND NEW.object_id IS OLD.object_id AND NEW.reason IS OLD.reason AND NEW.sealed_at IS OLD.sealed_at)
       )
       BEGIN SELECT RAISE(ABORT, 'audit_auditevent is append-only: UPDATE refused'); END;""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS audit_event_no_delete;",
    "DROP TRIGGER IF EXISTS audit_event_no_update;",
    "DROP TABLE IF EXISTS audit_guard_bypass;",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(FORWARD)
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
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]

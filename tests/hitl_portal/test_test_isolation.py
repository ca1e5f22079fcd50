"""The test suite's own isolation: a serialized-rollback test after any transactional one.

``tests/fairness/test_celery_worker.py`` (serialized rollback) used to fail at setup
when it ran after ``tests/dashboard/test_tasks.py`` (a plain transactional test): the
latter's closing flush re-creates content types and permissions under new ids, and
loading the migrated snapshot by primary key then collided with them. CI also runs
those two files in that order (``.ci/run``); this test replays the sequence inside
one test so it fails deterministically, whatever order the suite runs in.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection

from compliance.models import Requirement
from tests.conftest import _restore_snapshots_into_empty_tables

# serialized_rollback: so the test runner takes the snapshot this test replays.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_snapshot_restores_after_the_flush_of_a_plain_transactional_test() -> None:
    # The conftest's restore (empty the tables, then load in bulk) on this thread's connection object: a test
    # that made the thread a new connection object would otherwise have dropped it (and the runner's snapshot).
    _restore_snapshots_into_empty_tables(connection)
    # Taken by the test runner right after migrating; this test starts from exactly that state.
    snapshot = getattr(connection, "_test_serialized_contents", None) or connection.creation.serialize_db_to_string()
    migrated_types = dict(ContentType.objects.values_list("pk", "model"))
    migrated_groups = sorted(Group.objects.values_list("pk", "name"))
    migrated_links = sorted(Requirement.related.through.objects.values_list("from_requirement", "to_requirement"))
    migrated_permissions = Permission.objects.count()
    # What the teardown of a transactional test without serialized rollback does:
    call_command("flush", interactive=False, verbosity=0, inhibit_post_migrate=False, reset_sequences=False)
    assert not Group.objects.exists() and not Requirement.objects.exists()
    assert ContentType.objects.exists()  # post_migrate made them again...
    assert set(ContentType.objects.values_list("pk", flat=True)).isdisjoint(migrated_types)  # ...under new ids

    # What the setup of a serialized-rollback test does (tests/conftest.py makes it start from empty tables).
    connection.creation.deserialize_db_from_string(snapshot)

    assert dict(ContentType.objects.values_list("pk", "model")) == migrated_types
    assert sorted(Group.objects.values_list("pk", "name")) == migrated_groups
    assert {"reviewer", "compliance_officer"} <= {name for _, name in migrated_groups}
    assert Requirement.objects.exists()
    assert sorted(Requirement.related.through.objects.values_list("from_requirement", "to_requirement")) == (
        migrated_links
    )
    assert migrated_links  # the catalog links requirements to each other: the many-to-many rows come back too
    assert Permission.objects.count() == migrated_permissions
    assert Permission.objects.filter(content_type__model="case").exists()

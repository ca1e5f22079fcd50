"""The incident register in the oversight console: read-only, with field-level history.

Incidents change only through ``incidents.services`` (the register's pages and the
API), which write the audit events and keep the Art. 73 clock right.
"""

from __future__ import annotations

from django.contrib import admin

from hitl_portal.admin import ConsoleHistoryAdmin, ReadOnlyAdminMixin
from incidents.models import Incident


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdminMixin, ConsoleHistoryAdmin):
    list_display = ("id", "system", "kind", "status", "aware_at", "report_due_at", "source")
    list_filter = ("kind", "status", "source", "system")
    search_fields = ("title", "description")
    list_select_related = ("system",)

from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    """The incident register: Art. 73 serious incidents, bias incidents, chain and quality incidents."""

    name = "incidents"
    verbose_name = "Incidents"

    def ready(self) -> None:
        # A lower floor (the audit ledger) announces a broken chain by a signal; the
        # register files the incident. See audit.signals.
        from django.urls import reverse

        from audit.timeline import register_object_link
        from incidents import receivers  # noqa: F401

        register_object_link("incident", lambda pk: reverse("compliance:incident_detail", args=[pk]))

from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self) -> None:
        # Obligations follow each system's registration (reviews announces the changes).
        from compliance import receivers  # noqa: F401

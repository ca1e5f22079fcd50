from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self) -> None:
        # Obligations follow each system's registration (reviews announces the changes).
        from compliance import (
            demo,  # noqa: F401  (connects the governance half of demo_data)
            receivers,  # noqa: F401
        )

from django.apps import AppConfig


class HitlPortalConfig(AppConfig):
    name = "hitl_portal"
    verbose_name = "Portal infrastructure"

    def ready(self) -> None:
        from django.core.signals import request_started
        from django.db.backends.signals import connection_created

        from hitl_portal import plans

        connection_created.connect(plans.install, dispatch_uid="hitl_portal.plans.install")
        request_started.connect(plans.reset_wanted, dispatch_uid="hitl_portal.plans.reset_wanted")

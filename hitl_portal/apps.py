from django.apps import AppConfig


class HitlPortalConfig(AppConfig):
    name = "hitl_portal"
    verbose_name = "Portal infrastructure"

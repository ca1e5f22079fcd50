from django.apps import AppConfig


class RecordsConfig(AppConfig):
    """Records kept for the law around the ledger: retention and purges, legal holds,
    the Art. 12(3) biometric-use register, the case browser and case timelines."""

    name = "records"
    verbose_name = "Records"

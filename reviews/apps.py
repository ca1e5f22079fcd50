from typing import Any

from django.apps import AppConfig


def _record_lockout(sender: Any, request: Any = None, username: str | None = None,
                    ip_address: str | None = None, **kwargs: Any) -> None:
    from reviews.services.identity import login_lockout_record

    login_lockout_record(request=request, username=username, ip_address=ip_address)


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Human review"

    def ready(self) -> None:
        from axes.signals import user_locked_out

        # django-axes decides the lockout; the audit trail records it (user.locked_out).
        user_locked_out.connect(_record_lockout, dispatch_uid="reviews-record-lockout")

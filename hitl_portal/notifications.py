"""Notifications that reach someone: the one service every app raises alerts through.

``notify`` (called inside the caller's transaction) records the alert, puts it in the
in-app inbox of each recipient who wants it, and creates one delivery row per e-mail
address and per configured chat channel; the deliveries go out after commit (a Celery
task) and are retried with exponential backoff by beat until they succeed or give up.
Nothing here is ever "sent" unless a channel accepted it, and an alert nobody can be
reached for stays visible as *undelivered* on the officers' home page and the
dashboard (``undelivered``).

Channels: e-mail through Django's mail backend (``EMAIL_URL``, e.g. ``smtp://host:25``)
and chat webhooks through Apprise (``HITL_NOTIFY_CHAT_URLS``: Slack, Microsoft Teams,
Mattermost, generic ``json://`` endpoints, …; configured by the operator, so trusted).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from hitl_portal.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationKind,
    NotificationPreference,
    NotificationRecipient,
)
from hitl_portal.roles import ADMIN, COMPLIANCE_OFFICER

logger = logging.getLogger(__name__)

ERROR_MAX = 300


def _recipients(roles: Iterable[str], users: Iterable[User]) -> list[User]:
    """Active users holding one of ``roles`` (``admin``: superusers), plus ``users``."""
    roles = set(roles)
    query = Q(pk__in=[u.pk for u in users])
    names = roles - {ADMIN}
    if names:
        query |= Q(groups__name__in=names)
    if ADMIN in roles:
        query |= Q(is_superuser=True)
    return list(User.objects.filter(query, is_active=True).distinct().order_by("username"))


def _preferences(users: list[User], kind: str) -> dict[int, NotificationPreference]:
    rows = NotificationPreference.objects.filter(user__in=users, kind=kind)
    return {row.user_id: row for row in rows}


def notify(
    *,
    kind: str,
    subject: str,
    body: str = "",
    link: str = "",
    roles: Iterable[str] = (COMPLIANCE_OFFICER,),
    users: Iterable[User] = (),
    severity: str = "warning",
    dedupe_key: str | None = None,
) -> Notification | None:
    """Raise an alert for ``roles`` (and ``users``); ``None`` when ``dedupe_key`` was already raised.

    Call inside the transaction of the change the alert is about: if it rolls back,
    no alert exists and nothing is sent.
    """
    if kind not in NotificationKind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    if dedupe_key is not None and Notification.objects.filter(dedupe_key=dedupe_key).exists():
        return None
    try:
        with transaction.atomic():
            notification = Notification.objects.create(kind=kind, severity=severity, subject=subject[:200],
                                                       body=body, link=link[:500], dedupe_key=dedupe_key)
    except IntegrityError:  # raised concurrently by another process: once is enough
        return None
    people = _recipients(roles, users)
    prefs = _preferences(people, kind)
    NotificationRecipient.objects.bulk_create([
        NotificationRecipient(notification=notification, user=user)
        for user in people if prefs.get(user.pk) is None or prefs[user.pk].inbox
    ])
    deliveries = [
        NotificationDelivery(notification=notification, channel="email", target=user.email,
                             next_attempt_at=timezone.now())
        for user in people if user.email and (prefs.get(user.pk) is None or prefs[user.pk].email)
    ]
    deliveries += [
        NotificationDelivery(notification=notification, channel="chat", target=url, next_attempt_at=timezone.now())
        for url in settings.HITL_NOTIFY_CHAT_URLS
    ]
    created = NotificationDelivery.objects.bulk_create(deliveries)
    if created:
        from hitl_portal.tasks import deliver_notifications

        transaction.on_commit(lambda: _enqueue(deliver_notifications))
    return notification


def _enqueue(task: Any) -> None:
    try:
        task.delay()
    except Exception:  # the broker is down: beat's sweep delivers them later
        logger.warning("notification delivery not queued; the sweep will pick it up", exc_info=True)


# --- Delivery ----------------------------------------------------------------------------------


def _text(notification: Notification) -> str:
    link = notification.link
    if link and settings.HITL_BASE_URL:
        link = settings.HITL_BASE_URL.rstrip("/") + link
    return notification.body + (f"\n\nOpen: {link}" if link else "")


def _send_email(delivery: NotificationDelivery) -> None:
    notification = delivery.notification
    send_mail(f"[HITL] {notification.subject}", _text(notification), None, [delivery.target], fail_silently=False)


def _send_chat(delivery: NotificationDelivery) -> None:
    import apprise

    notification = delivery.notification
    sender = apprise.Apprise()
    if not sender.add(delivery.target):
        raise ValueError("not a chat URL Apprise understands")
    if not sender.notify(title=f"[HITL] {notification.subject}", body=_text(notification)):
        raise RuntimeError("the chat webhook refused the message or could not be reached")


def retry_delay(attempts: int) -> dt.timedelta:
    """Exponential backoff: base, 2×base, 4×base … capped at six hours."""
    seconds = settings.HITL_NOTIFY_RETRY_BASE_S * (2 ** max(attempts - 1, 0))
    return dt.timedelta(seconds=min(seconds, 6 * 3600))


def deliver_due(*, now: dt.datetime | None = None, limit: int = 200) -> int:
    """Try every pending delivery that is due (each locked, so two workers never send one twice)."""
    now = now or timezone.now()
    sent = 0
    ids = list(NotificationDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
               .order_by("next_attempt_at", "id").values_list("id", flat=True)[:limit])
    for delivery_id in ids:
        with transaction.atomic():
            queryset = NotificationDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING)
            delivery = queryset.select_for_update(skip_locked=True).select_related("notification").first()
            if delivery is None:
                continue
            delivery.attempts += 1
            try:
                (_send_email if delivery.channel == "email" else _send_chat)(delivery)
            except Exception as exc:
                delivery.last_error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
                if delivery.attempts >= settings.HITL_NOTIFY_MAX_ATTEMPTS:
                    delivery.status = DeliveryStatus.GAVE_UP
                    delivery.next_attempt_at = None
                else:
                    delivery.next_attempt_at = timezone.now() + retry_delay(delivery.attempts)
                logger.warning("notification delivery %s failed (attempt %s): %s", delivery.pk, delivery.attempts,
                               delivery.last_error)
            else:
                delivery.status = DeliveryStatus.SENT
                delivery.sent_at = timezone.now()
                delivery.next_attempt_at = None
                sent += 1
            delivery.save(update_fields=["attempts", "status", "last_error", "next_attempt_at", "sent_at"])
    return sent


# --- Reads -----------------------------------------------------------------------------------------


def unread_count(user: Any) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return NotificationRecipient.objects.filter(user=user, read_at__isnull=True).count()


def inbox(user: Any) -> QuerySet[NotificationRecipient]:
    return NotificationRecipient.objects.filter(user=user).select_related("notification").order_by(
        "read_at", "-notification__created_at", "-id")


def mark_read(*, user: Any, ids: Iterable[int] | None = None) -> int:
    """Mark the user's own inbox rows read (all when ``ids`` is None); returns how many changed."""
    rows = NotificationRecipient.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        rows = rows.filter(notification_id__in=list(ids))
    return rows.update(read_at=timezone.now())


def undelivered(*, since: dt.datetime | None = None) -> QuerySet[Notification]:
    """Alerts that reached nobody: no inbox recipient and no delivery that was sent (or may still be)."""
    since = since or timezone.now() - dt.timedelta(days=30)
    in_inbox = NotificationRecipient.objects.filter(notification=OuterRef("pk"))
    reaching = NotificationDelivery.objects.filter(notification=OuterRef("pk"),
                                                   status__in=[DeliveryStatus.SENT, DeliveryStatus.PENDING])
    return Notification.objects.filter(created_at__gte=since).filter(~Exists(in_inbox), ~Exists(reaching))


def preference_rows(user: Any) -> list[dict[str, Any]]:
    """Every kind with the user's channels (defaults where they chose nothing)."""
    chosen = {row.kind: row for row in NotificationPreference.objects.filter(user=user)}
    return [
        {"kind": kind, "label": label, "inbox": chosen[kind].inbox if kind in chosen else True,
         "email": chosen[kind].email if kind in chosen else True}
        for kind, label in NotificationKind.choices
    ]


@transaction.atomic
def preferences_set(*, user: Any, choices: dict[str, dict[str, bool]]) -> None:
    """Store the user's channels per kind (unknown kinds refused)."""
    unknown = sorted(set(choices) - set(NotificationKind.values))
    if unknown:
        from django.core.exceptions import ValidationError

        raise ValidationError({"kind": [f"unknown kind(s): {', '.join(unknown)}"]})
    for kind, channels in choices.items():
        NotificationPreference.objects.update_or_create(
            user=user, kind=kind, defaults={"inbox": bool(channels.get("inbox")), "email": bool(channels.get("email"))}
        )

"""The Django admin as the oversight console (see also admin_webhooks)."""

from reviews import admin_webhooks  # noqa: F401  (registers the webhook delivery views)

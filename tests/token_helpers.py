"""API tokens for tests: knox's hashed tokens, the key returned once."""

from __future__ import annotations

from typing import Any

from knox.models import AuthToken


def new_token_key(user: Any) -> str:
    """Issue a token for ``user`` with the configured lifetime and return its key."""
    _, key = AuthToken.objects.create(user=user)
    return key

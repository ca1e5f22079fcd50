"""Cursor pagination on a unique, indexed ordering (no COUNT on large tables).

An invalid cursor is bad input, so a 400 naming ``cursor`` (DRF answers 404, as if
the list did not exist); a cursor whose position does not fit the ordering column
(a forged or truncated one) is refused the same way before it reaches the query.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination

INVALID_CURSOR = "Invalid cursor: use the next or previous link of a page as it is."


class PortalCursorPagination(CursorPagination):
    """``CursorPagination`` with a 400 for invalid cursors; ``numeric`` orderings check the position."""

    numeric_position = False

    def decode_cursor(self, request: Any) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise serializers.ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from None
        if cursor is not None and cursor.position is not None:
            position = str(cursor.position)
            bad = "\x00" in position or len(position) > 255
            if self.numeric_position:
                bad = bad or not position.lstrip("-").isdigit() or len(position) > 19
            if bad:
                raise serializers.ValidationError({self.cursor_query_param: [INVALID_CURSOR]})
        return cursor


class IdCursorPagination(PortalCursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    numeric_position = True


class SeqCursorPagination(PortalCursorPagination):
    ordering = "seq"
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000
    numeric_position = True

"""Cursor pagination on a unique, indexed ordering (no COUNT on large tables)."""

from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class SeqCursorPagination(CursorPagination):
    ordering = "seq"
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000

"""The URL map: no route is shadowed by one listed before it.

The API routes come first in ``hitl_portal.urls`` (and cases and the queue first among
the reviews API's), so that the hot requests find their route after fewer misses;
that is only safe while no earlier route also matches a later route's paths.
"""

from __future__ import annotations

import re
from typing import Any

from django.urls import Resolver404, get_resolver, resolve
from django.urls.resolvers import RegexPattern, URLPattern, URLResolver

_CONVERTERS = {"int": "7", "str": "zz-example", "slug": "zz-example", "uuid": "8f14e45f-ceea-467f-a0e6-2b5e4a7c1d00",
               "path": "zz/example"}


def _example(route: str) -> str:
    return re.sub(r"<(?:(\w+):)?\w+>", lambda m: _CONVERTERS.get(m.group(1) or "str", "zz-example"), route)


def _routes(resolver: URLResolver, prefix: str = "") -> list[tuple[str, URLPattern]]:
    found: list[tuple[str, URLPattern]] = []
    for entry in resolver.url_patterns:
        if isinstance(entry.pattern, RegexPattern):
            continue  # the admin's and the static files' regex routes: not example-able, not reordered
        route = prefix + _example(str(entry.pattern))
        if isinstance(entry, URLResolver):
            found += _routes(entry, route)
        else:
            found.append(("/" + route, entry))
    return found


def test_every_route_resolves_to_itself() -> None:
    routes = _routes(get_resolver())
    assert len(routes) > 300
    wrong: list[Any] = []
    for path, entry in routes:
        try:
            match = resolve(path)
        except Resolver404:
            wrong.append((path, entry.name, "404"))
            continue
        if match.func is not entry.callback:
            wrong.append((path, entry.name, match.url_name))
    assert wrong == []


def test_the_api_is_resolved_before_the_pages() -> None:
    first = get_resolver().url_patterns[0]
    assert str(first.pattern) == "api/v1/"

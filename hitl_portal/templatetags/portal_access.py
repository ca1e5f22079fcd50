"""``{% may "url-name" arg… [method="POST"] as ok %}``: may the signed-in user use that page or action?

Templates never list roles; they ask the view's own declaration through
``hitl_portal.permissions.may_access``, so a link or button is offered exactly
when following it would be allowed.
"""

from __future__ import annotations

from typing import Any

from django import template

from hitl_portal.permissions import may_access

register = template.Library()


@register.simple_tag(takes_context=True)
def may(context: template.Context, url_name: str, *args: Any, method: str = "GET") -> bool:
    request = context.get("request")
    user = getattr(request, "user", None) if request is not None else context.get("user")
    return may_access(user, url_name, *args, method=method)

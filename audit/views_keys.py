"""The published verification key of the audit chain (``/audit/public-key/``).

A verification key is public by nature: anyone given an export (an auditor, an
authority) must be able to fetch it and check the signed checkpoints with
``tools/verify_audit_export.py``, without an account. The page is open to all;
the recent checkpoints themselves are shown to compliance officers and admins
only (they reveal the chain's activity). ``?format=pem`` (or ``hex``) returns the
bare key for scripts.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from audit.models import Checkpoint
from audit.signing import PublicKeyInfo, parse_public_key, public_key
from hitl_portal.permissions import PUBLIC, declare_roles, has_role
from hitl_portal.roles import COMPLIANCE_OFFICER

RECENT_CHECKPOINTS = 20


@require_safe
@declare_roles({"GET": {PUBLIC}, "HEAD": {PUBLIC}})
def public_key_page(request: HttpRequest) -> HttpResponse:
    key = public_key()
    fmt = request.GET.get("format", "")
    if fmt == "pem":
        response = HttpResponse(key.pem, content_type="application/x-pem-file")
        response["Content-Disposition"] = 'inline; filename="hitl-audit-public-key.pem"'
        return response
    if fmt == "hex":
        return HttpResponse(key.hex + "\n", content_type="text/plain; charset=utf-8")
    from django.conf import settings

    retired = [PublicKeyInfo(parse_public_key(text))
               for text in settings.HITL_AUDIT_RETIRED_PUBLIC_KEYS]
    officer = has_role(request.user, {COMPLIANCE_OFFICER})
    checkpoints = list(Checkpoint.objects.order_by("-seq")[:RECENT_CHECKPOINTS]) if officer else []
    return render(
        request,
        "audit/public_key.html",
        {"key": key, "retired": retired, "checkpoints": checkpoints, "show_checkpoints": officer},
    )

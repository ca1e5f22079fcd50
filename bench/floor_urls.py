"""The portal's URLs plus ``POST /bench/floor/``: the request machinery of ``POST /cases/`` doing no work.

The floor view has what the ingest view has before its own work: the portal's
middleware, DRF's dispatch, the portal's token authentication (one statement), the
role permission, the integration throttle, the strict JSON parser reading the same
body, and a rendered JSON response. Its cost per request is the fixed cost of a
portal API request on this stack; ``POST /cases/`` minus it is what ingest itself costs.
"""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from hitl_portal.api.parsers import StrictJSONParser
from hitl_portal.api.views import PortalAPIView
from hitl_portal.roles import INTEGRATION
from hitl_portal.urls import urlpatterns as portal_urlpatterns
from reviews.api.views.cases import PORTAL_AUTHENTICATION, IntegrationRateThrottle


class FloorView(PortalAPIView):
    authentication_classes = PORTAL_AUTHENTICATION
    parser_classes = [StrictJSONParser]
    hot_path_methods = frozenset({"POST"})  # as the ingest view: its token lookup is planned the same way
    roles = {"POST": {INTEGRATION}}
    throttle_classes = [IntegrationRateThrottle]

    def post(self, request: Request) -> Response:
        body = request.data  # parsed (and checked) as the ingest view parses it
        external_id = body.get("external_id") if isinstance(body, dict) else None
        return Response({"id": None, "external_id": external_id, "status": "floor"}, status=201)


urlpatterns = [*portal_urlpatterns, path("bench/floor/", FloorView.as_view())]

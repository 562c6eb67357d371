import logging
import sys

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from config import roles, selectors
from config.http import is_fragment
from config.keyset import keyset_page
from config.models import AuditEntry

AUDIT_PAGE_SIZE = 50


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def audit_log(request):
    """Who changed what: RevOps admins only. Filter by object type, actor and
    object; newest first, paged by keyset."""
    if not (request.user.is_superuser or roles.has_role(request.user, roles.REVOPS_ADMIN)):
        raise PermissionDenied("The audit log is for RevOps admins.")
    entries = AuditEntry.objects.select_related("actor")
    object_type = request.GET.get("type", "")
    actor = request.GET.get("actor", "")
    q = request.GET.get("q", "").strip()
    if object_type:
        entries = entries.filter(object_type=object_type)
    if actor.isdigit():
        entries = entries.filter(actor_id=int(actor))
    if q:
        entries = entries.filter(object_repr__icontains=q)
    page = keyset_page(
        entries, keys=("created_at", "id"), descending=True, size=AUDIT_PAGE_SIZE,
        after=request.GET.get("after", ""), before=request.GET.get("before", ""),
    )  # fmt: skip
    query = request.GET.copy()
    for key in ("after", "before"):
        query.pop(key, None)
    context = {
        "page": page,
        "query": query.urlencode(),
        "types": AuditEntry.objects.order_by().values_list("object_type", flat=True).distinct(),
        "actors": selectors.audit_actors(),
        "selected": {"type": object_type, "actor": actor, "q": q},
    }
    template = "config/audit_log.html"
    if is_fragment(request):
        template += "#audit-results"
    return render(request, template, context)


logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5


def server_error(request):
    """The 500 handler. When the cause is the database being unreachable (a
    restart, a network blip), say so: 503 with Retry-After, as JSON for the
    API and a short page otherwise. Nothing was half-saved: the request's
    transaction never committed. Anything else is the plain 500 page."""
    exception = sys.exc_info()[1]
    if isinstance(exception, OperationalError | InterfaceError):
        logger.warning("Database unavailable for %s: %s", request.path, exception)
        if request.path.startswith("/api/"):
            response = JsonResponse(
                {"error": "The service is briefly unavailable; retry after a few seconds."},
                status=503,
            )
        else:
            page = loader.get_template("503.html").render({"retry_after": RETRY_AFTER_SECONDS})
            response = HttpResponse(page, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return HttpResponseServerError(loader.get_template("500.html").render())

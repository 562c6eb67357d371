from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from config import roles
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
        "actors": get_user_model().objects.filter(is_staff=True).order_by("username"),
        "selected": {"type": object_type, "actor": actor, "q": q},
    }
    template = "config/audit_log.html"
    if is_fragment(request):
        template += "#audit-results"
    return render(request, template, context)

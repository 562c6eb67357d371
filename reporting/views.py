from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from config import roles
from config.context_processors import nav_sections
from config.models import ServiceHeartbeat
from sla.selectors import marketing_commitments


@require_http_methods(["GET"])
def home(request):
    """The page after login: what Accord is, and a way into each area."""
    context = {"sections": nav_sections(), "commitments": marketing_commitments()}
    if roles.has_role(request.user, roles.REVOPS_ADMIN) or request.user.is_superuser:
        context["heartbeats"] = list(ServiceHeartbeat.objects.all())
    return render(request, "reporting/home.html", context)

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from config.http import is_fragment, safe_next_url
from sla import selectors, services
from sla.models import Notification

NOTIFICATION_PANEL_SIZE = 8


@require_http_methods(["GET"])
@vary_on_headers("HX-Request")
def notification_list(request):
    """The notification centre: the whole list as a page, the latest few as
    the header's drop-down panel (htmx)."""
    if is_fragment(request):
        return render(
            request,
            "sla/notifications.html#notification-panel",
            {
                "notifications": selectors.notifications_for(
                    user=request.user, limit=NOTIFICATION_PANEL_SIZE
                )
            },
        )
    page = Paginator(selectors.notifications_for(user=request.user), 25).get_page(
        request.GET.get("page")
    )
    return render(request, "sla/notifications.html", {"page": page})


@require_http_methods(["POST"])
def notification_read(request, pk):
    notification = get_object_or_404(Notification.objects.for_user(request.user), pk=pk)
    services.notification_mark_read(notification=notification)
    return redirect(safe_next_url(request, notification.url, reverse("notification_list")))


@require_http_methods(["POST"])
def notifications_read_all(request):
    services.notifications_mark_all_read(user=request.user)
    if is_fragment(request):
        return render(
            request,
            "sla/notifications.html#notification-panel",
            {
                "notifications": selectors.notifications_for(
                    user=request.user, limit=NOTIFICATION_PANEL_SIZE
                )
            },
        )
    return redirect("notification_list")

from django.contrib import admin

from config import roles
from config.models import ServiceHeartbeat


class AccordAdminSite(admin.AdminSite):
    """The configuration back office: RevOps admins (and superusers) only."""

    site_header = "Accord administration"
    site_title = "Accord admin"
    index_title = "Configuration back office"

    def has_permission(self, request):
        user = request.user
        return bool(
            user.is_active
            and user.is_staff
            and (user.is_superuser or roles.has_role(user, roles.REVOPS_ADMIN))
        )


@admin.register(ServiceHeartbeat)
class ServiceHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "seen_at")
    readonly_fields = ("name", "seen_at")
    search_fields = ("name",)

from django.contrib import admin

from config import roles
from config.audit import AuditedAdmin
from config.models import AuditEntry, ServiceHeartbeat


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


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "object_type", "object_repr")
    list_filter = ("action", "object_type")
    search_fields = ("object_repr", "object_id", "actor__username")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def users_and_groups_audited(site) -> None:
    """Register users and groups with audited admins, replacing Django's own
    registrations. Called from ConfigConfig.ready(), once every admin module
    (django.contrib.auth's included) has been loaded."""
    from django.contrib.auth.admin import GroupAdmin, UserAdmin
    from django.contrib.auth.models import Group, User

    class AuditedUserAdmin(AuditedAdmin, UserAdmin):
        pass

    class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
        pass

    for model, model_admin in ((User, AuditedUserAdmin), (Group, AuditedGroupAdmin)):
        if site.is_registered(model):
            site.unregister(model)
        site.register(model, model_admin)

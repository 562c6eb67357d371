from django.contrib import admin

from config.audit import AuditedAdmin
from config.backoffice import SystemTableAdmin
from config.models import AuditEntry, ServiceHeartbeat, SweepState


@admin.register(ServiceHeartbeat)
class ServiceHeartbeatAdmin(SystemTableAdmin, admin.ModelAdmin):
    """When beat and a worker last proved alive (written every minute)."""

    list_display = ("name", "seen_at", "is_running")
    list_filter = ("seen_at",)
    search_fields = ("name",)

    @admin.display(boolean=True, description="running")
    def is_running(self, heartbeat):
        return not heartbeat.is_stale


@admin.register(SweepState)
class SweepStateAdmin(SystemTableAdmin, admin.ModelAdmin):
    """How far each sweep has looked."""

    list_display = ("name", "upto")
    list_filter = ("upto",)
    search_fields = ("name",)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "object_type", "object_repr")
    list_filter = ("action", "object_type")
    search_fields = ("object_repr", "object_id", "actor__username")
    date_hierarchy = "created_at"
    list_select_related = ("actor",)
    raw_id_fields = ("actor",)
    show_full_result_count = False  # one row per change: no COUNT(*) on every page

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

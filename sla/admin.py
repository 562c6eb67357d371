from django.contrib import admin

from config.audit import AuditedAdmin
from sla import models


class ReadOnlyWhenNotDraft:
    """Published and superseded versions (and their parts) are shown read-only."""

    def has_change_permission(self, request, obj=None):
        version = getattr(obj, "version", obj)
        if version is not None and not version.is_draft:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        version = getattr(obj, "version", obj)
        if version is not None and not version.is_draft:
            return False
        return super().has_delete_permission(request, obj)


class EngagementGroupInline(ReadOnlyWhenNotDraft, admin.TabularInline):
    model = models.EngagementGroup
    extra = 0


class EngagementRuleInline(ReadOnlyWhenNotDraft, admin.TabularInline):
    model = models.EngagementRule
    extra = 0


class BehaviourCriterionInline(ReadOnlyWhenNotDraft, admin.TabularInline):
    model = models.BehaviourCriterion
    extra = 0


@admin.register(models.SlaVersion)
class SlaVersionAdmin(ReadOnlyWhenNotDraft, admin.ModelAdmin):
    list_display = ("number", "title", "status", "mql_threshold", "published_at", "published_by")
    list_filter = ("status",)
    search_fields = ("title", "changelog")
    readonly_fields = ("status", "published_at", "published_by", "superseded_at", "created_by")
    inlines = [EngagementGroupInline, EngagementRuleInline, BehaviourCriterionInline]


class FitRuleInline(ReadOnlyWhenNotDraft, admin.TabularInline):
    model = models.FitRule
    extra = 0


class PersonaInline(ReadOnlyWhenNotDraft, admin.StackedInline):
    model = models.Persona
    extra = 0


@admin.register(models.IcpVersion)
class IcpVersionAdmin(ReadOnlyWhenNotDraft, admin.ModelAdmin):
    list_display = ("number", "title", "status", "max_fit_points", "published_at")
    list_filter = ("status",)
    search_fields = ("title", "changelog")
    readonly_fields = ("status", "published_at", "published_by", "superseded_at", "created_by")
    inlines = [FitRuleInline, PersonaInline]


@admin.register(models.Persona)
class PersonaAdmin(ReadOnlyWhenNotDraft, admin.ModelAdmin):
    list_display = ("name", "buying_role", "version")
    list_filter = ("buying_role", "version")
    search_fields = ("name", "title_keywords", "pain_points")


@admin.register(models.RoutingRule)
class RoutingRuleAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("position", "name", "team", "segments", "regions", "industries", "is_active")
    list_editable = ("is_active",)
    list_filter = ("is_active", "team")
    search_fields = ("name",)
    ordering = ("position", "id")


@admin.register(models.RoutingSettings)
class RoutingSettingsAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("__str__",)
    autocomplete_fields = ("default_owner",)


@admin.register(models.RoutingCounter)
class RoutingCounterAdmin(admin.ModelAdmin):
    list_display = ("user", "assigned", "last_assigned_at")
    search_fields = ("user__username",)


@admin.register(models.Breach)
class BreachAdmin(admin.ModelAdmin):
    list_display = (
        "lead",
        "owner",
        "due_at",
        "breached_at",
        "manager_notified_at",
        "reassigned_at",
    )
    list_filter = ("sla_version",)
    raw_id_fields = ("lead", "owner", "reassigned_to")
    date_hierarchy = "breached_at"


@admin.register(models.ScoreEvaluation)
class ScoreEvaluationAdmin(admin.ModelAdmin):
    list_display = ("lead", "total", "fit", "engagement", "qualifies", "sla_version", "icp_version")
    list_filter = ("qualifies", "sla_version", "icp_version")
    raw_id_fields = ("lead", "persona")
    show_full_result_count = False


@admin.register(models.RescoreJob)
class RescoreJobAdmin(admin.ModelAdmin):
    list_display = ("created_at", "status", "processed", "total", "qualified", "sla_version")
    readonly_fields = [f.name for f in models.RescoreJob._meta.fields]


@admin.register(models.Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("title", "recipient", "created_at", "read_at")
    list_filter = ("read_at",)
    search_fields = ("title", "recipient__username")
    raw_id_fields = ("recipient",)

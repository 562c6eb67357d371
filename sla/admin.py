from django.contrib import admin

from config.audit import AuditedAdmin
from config.backoffice import SystemTableAdmin
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
    list_select_related = ("published_by",)
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
    list_select_related = ("version",)


@admin.register(models.RoutingRule)
class RoutingRuleAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("position", "name", "team", "segments", "regions", "industries", "is_active")
    list_editable = ("is_active",)
    list_filter = ("is_active", "team")
    search_fields = ("name",)
    ordering = ("position", "id")
    list_select_related = ("team",)


@admin.register(models.RoutingSettings)
class RoutingSettingsAdmin(AuditedAdmin, admin.ModelAdmin):
    """One row: who gets the leads no rule or team member can take."""

    list_display = ("__str__",)
    list_select_related = ("default_owner",)
    autocomplete_fields = ("default_owner",)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not models.RoutingSettings.objects.exists()


@admin.register(models.RoutingCounter)
class RoutingCounterAdmin(SystemTableAdmin, admin.ModelAdmin):
    """The weighted round robin's state (written by routing)."""

    list_display = ("user", "assigned", "last_assigned_at")
    list_filter = ("last_assigned_at",)
    search_fields = ("user__username", "user__first_name", "user__last_name")
    list_select_related = ("user",)


@admin.register(models.RoutingRotation)
class RoutingRotationAdmin(SystemTableAdmin, admin.ModelAdmin):
    """How far each team's round robin has got (written by routing)."""

    list_display = ("team", "level")
    search_fields = ("team__name",)
    list_select_related = ("team",)


@admin.register(models.Breach)
class BreachAdmin(SystemTableAdmin, admin.ModelAdmin):
    """Response clocks that ran out (written once each by the breach sweep)."""

    list_display = (
        "lead",
        "owner",
        "due_at",
        "breached_at",
        "manager_notified_at",
        "reassigned_at",
    )
    list_filter = (
        "sla_version",
        ("manager_notified_at", admin.EmptyFieldListFilter),
        ("reassigned_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("lead__email", "owner__username")
    list_select_related = ("lead", "owner")
    date_hierarchy = "breached_at"
    show_full_result_count = False
    ordering = ("-id",)  # newest first by primary key: no index on the time alone


@admin.register(models.ScoreEvaluation)
class ScoreEvaluationAdmin(SystemTableAdmin, admin.ModelAdmin):
    """How each lead scored under each pair of versions (written by scoring)."""

    list_display = ("lead", "total", "fit", "engagement", "qualifies", "sla_version", "icp_version")
    list_filter = ("qualifies", "high_intent", "sla_version", "icp_version")
    search_fields = ("lead__email",)
    list_select_related = ("lead", "sla_version", "icp_version")
    show_full_result_count = False
    ordering = ("-id",)  # newest first by primary key: no index on the time alone


class RescoreLaneInline(admin.TabularInline):
    """Shown read-only: its job's admin has no change permission."""

    model = models.RescoreLane
    extra = 0


@admin.register(models.RescoreJob)
class RescoreJobAdmin(SystemTableAdmin, admin.ModelAdmin):
    """Re-scores after a publish, with their progress (written by the job)."""

    list_display = ("created_at", "status", "processed", "total", "qualified", "sla_version")
    list_filter = ("status", "sla_version", "icp_version")
    search_fields = ("failure",)
    list_select_related = ("sla_version",)
    inlines = [RescoreLaneInline]


@admin.register(models.RescoreLane)
class RescoreLaneAdmin(SystemTableAdmin, admin.ModelAdmin):
    """One re-score job's parallel lanes and their resume points."""

    list_display = ("job", "number", "processed", "last_lead_id", "finished_at", "updated_at")
    list_filter = ("job__status", ("finished_at", admin.EmptyFieldListFilter))
    search_fields = ("job__id__exact",)
    list_select_related = ("job",)


@admin.register(models.Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("title", "recipient", "created_at", "read_at")
    list_filter = ("read_at",)
    search_fields = ("title", "recipient__username")
    raw_id_fields = ("recipient",)
    list_select_related = ("recipient",)
    show_full_result_count = False

from django.contrib import admin
from django.utils import timezone

from config.audit import AuditedAdmin
from config.backoffice import SystemTableAdmin
from reporting import models

# --- Win/loss retrospectives -----------------------------------------------------------


@admin.register(models.DriverCategory)
class DriverCategoryAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("name", "code", "position", "is_active")
    list_editable = ("position", "is_active")
    list_filter = ("is_active",)
    prepopulated_fields = {"code": ("name",)}
    search_fields = ("name", "description")


def _closed_at_stamp(item) -> None:
    """Done and dropped items carry the time they closed (a constraint)."""
    if item.is_open:
        item.closed_at = None
    elif item.closed_at is None:
        item.closed_at = timezone.now()


class RetrospectiveParticipantInline(admin.TabularInline):
    model = models.RetrospectiveParticipant
    extra = 0
    raw_id_fields = ("user",)


class DecisionDriverInline(admin.TabularInline):
    model = models.DecisionDriver
    extra = 0


class ActionItemInline(admin.StackedInline):
    model = models.ActionItem
    fk_name = "retrospective"
    extra = 0
    raw_id_fields = ("owner", "sla_version", "icp_version", "persona", "campaign", "content_asset")
    readonly_fields = ("closed_by_sla_version", "closed_by_icp_version", "closed_at")


@admin.register(models.Retrospective)
class RetrospectiveAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("opportunity", "outcome", "loss_type", "competitor", "held_on")
    list_filter = ("outcome", "loss_type", "pitch_match", "competitor")
    search_fields = ("opportunity__name", "opportunity__account__name", "learnings")
    raw_id_fields = ("opportunity", "campaign", "created_by")
    list_select_related = ("opportunity", "competitor")
    date_hierarchy = "held_on"
    inlines = [RetrospectiveParticipantInline, DecisionDriverInline, ActionItemInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is models.ActionItem:
            for item_form in formset.forms:
                if item_form.has_changed() and not item_form.cleaned_data.get("DELETE"):
                    _closed_at_stamp(item_form.instance)
        super().save_formset(request, form, formset, change)


@admin.register(models.DecisionDriver)
class DecisionDriverAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("retrospective", "category", "sentiment")
    list_filter = ("category", "sentiment", "retrospective__outcome")
    search_fields = ("retrospective__opportunity__name", "note")
    raw_id_fields = ("retrospective",)
    list_select_related = ("retrospective__opportunity", "category")


@admin.register(models.ActionItem)
class ActionItemAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("title", "target_kind", "owner", "due_on", "status", "closed_at")
    list_filter = ("status", "target_kind")
    search_fields = ("title", "description", "target_note")
    list_select_related = ("owner",)
    raw_id_fields = (
        "retrospective", "owner", "sla_version", "icp_version", "persona", "campaign",
        "content_asset", "created_by",
    )  # fmt: skip
    readonly_fields = ("closed_by_sla_version", "closed_by_icp_version", "closed_at")

    def save_model(self, request, obj, form, change):
        _closed_at_stamp(obj)
        super().save_model(request, obj, form, change)


# --- end of win/loss ---------------------------------------------------------------------


# --- Closed-loop reporting: goals, the QBR record, settings, refresh state -------------


@admin.register(models.SharedGoal)
class SharedGoalAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("title", "metric", "target", "starts_on", "ends_on", "segment", "team")
    list_filter = ("metric", "segment", "team")
    search_fields = ("title", "note")
    raw_id_fields = ("created_by",)
    list_select_related = ("team",)


@admin.register(models.QuarterlyReview)
class QuarterlyReviewAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("quarter_start", "improvement", "improvement_owner", "recorded_at")
    list_filter = ("quarter_start",)
    search_fields = ("improvement", "improvement_owner", "notes")
    raw_id_fields = ("recorded_by",)


@admin.register(models.ReportingSettings)
class ReportingSettingsAdmin(AuditedAdmin, admin.ModelAdmin):
    """One row: the sales cost CAC adds to spend, and the gross margin LTV counts."""

    list_display = ("__str__", "sales_cost_per_month", "gross_margin_percent", "updated_at")

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not models.ReportingSettings.objects.exists()


@admin.register(models.AttributionScheme)
class AttributionSchemeAdmin(SystemTableAdmin, admin.ModelAdmin):
    """The weights each stored attribution result was computed with."""

    list_display = ("model", "weights", "created_at")
    list_filter = ("model",)
    search_fields = ("signature",)


@admin.register(models.RefreshState)
class RefreshStateAdmin(SystemTableAdmin, admin.ModelAdmin):
    """When the reporting tables were last refreshed and rebuilt (one row)."""

    list_display = (
        "refreshed_at", "rebuilt_at", "rebuild_seconds", "changes_applied", "generation",
    )  # fmt: skip


# The derived tables (see reporting.models.metrics): written only by
# reporting.rollups, read here. Attribution credits and funnel rows grow with
# the leads and deals (millions): no COUNT(*) per page, related rows joined.


@admin.register(models.AttributionPath)
class AttributionPathAdmin(SystemTableAdmin, admin.ModelAdmin):
    list_display = (
        "opportunity",
        "kind",
        "day",
        "amount",
        "segment",
        "touches",
        "marketing_touches",
    )
    list_filter = ("kind", "segment")
    search_fields = ("opportunity__name",)
    list_select_related = ("opportunity",)
    show_full_result_count = False


@admin.register(models.AttributionCredit)
class AttributionCreditAdmin(SystemTableAdmin, admin.ModelAdmin):
    list_display = (
        "opportunity", "kind", "model", "day", "channel", "campaign", "asset", "weight", "credit",
    )  # fmt: skip
    list_filter = ("kind", "model", "channel", "segment")
    search_fields = ("opportunity__name",)
    list_select_related = ("opportunity", "campaign", "asset")
    show_full_result_count = False


@admin.register(models.LeadFunnel)
class LeadFunnelAdmin(SystemTableAdmin, admin.ModelAdmin):
    list_display = (
        "lead", "segment", "source_channel", "created_at", "reached_mql_at", "reached_sal_at",
        "reached_opportunity_at", "reached_customer_at",
    )  # fmt: skip
    list_filter = ("segment", "source_channel")
    search_fields = ("lead__email",)
    list_select_related = ("lead",)
    show_full_result_count = False


@admin.register(models.StageFlowDaily)
class StageFlowDailyAdmin(SystemTableAdmin, admin.ModelAdmin):
    list_display = (
        "day", "from_stage", "to_stage", "segment", "channel", "owner", "changes", "with_reason",
    )  # fmt: skip
    list_filter = ("to_stage", "from_stage", "segment", "channel", "sla_version")
    search_fields = ("owner__username",)
    list_select_related = ("owner",)
    ordering = ("-day",)
    show_full_result_count = False


@admin.register(models.StageFlowMonthly)
class StageFlowMonthlyAdmin(SystemTableAdmin, admin.ModelAdmin):
    list_display = ("month", "from_stage", "to_stage", "segment", "owner", "changes", "with_reason")
    list_filter = ("to_stage", "from_stage", "segment", "sla_version")
    search_fields = ("owner__username",)
    list_select_related = ("owner",)
    ordering = ("-month",)
    show_full_result_count = False


@admin.register(models.PendingChange)
class PendingChangeAdmin(SystemTableAdmin, admin.ModelAdmin):
    """Changes the next refresh will take in (a short queue when refreshes run)."""

    list_display = ("id", "source", "lead_id", "opportunity_id", "stage_change_id", "queued_at")
    list_filter = ("source",)
    search_fields = ("lead_id__exact", "opportunity_id__exact")
    show_full_result_count = False

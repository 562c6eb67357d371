from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from config.audit import AuditedAdmin
from config.backoffice import SystemTableAdmin
from leads import models
from leads.selectors import accounts_like


@admin.register(models.Team)
class TeamAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("name", "region", "manager")
    list_filter = ("region",)
    list_select_related = ("manager",)
    search_fields = ("name", "manager__username", "manager__last_name")
    autocomplete_fields = ("manager",)


@admin.register(models.TeamMembership)
class TeamMembershipAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("user", "team", "capacity", "is_away")
    list_filter = ("team", "is_away")
    list_editable = ("capacity", "is_away")
    list_select_related = ("user", "team")
    search_fields = ("user__username", "user__first_name", "user__last_name", "team__name")
    autocomplete_fields = ("user", "team")


@admin.register(models.Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "series", "list_price")
    list_filter = ("series",)
    search_fields = ("name", "series")


def _lookalikes_html(accounts) -> str:
    """“Acme Corporation (acme.com; account page)”, each linked to its admin
    page and to its account page."""
    return format_html_join(
        "; ",
        '<a href="{}">{}</a> ({}<a href="{}">account page</a>)',
        (
            (
                reverse("admin:leads_account_change", args=[account.pk]),
                account.name,
                f"{account.domain}, " if account.domain else "",
                account.get_absolute_url(),
            )
            for account in accounts
        ),
    )


class AccountAdminForm(forms.ModelForm):
    """The admin's account form. Adding an account, or renaming one, so that it
    looks like existing accounts (`accounts_like`: the same name once case,
    punctuation and suffixes such as Inc are set aside, or the same domain) is
    held back with a hint naming them, until the user ticks `save_anyway`.
    After validation `lookalikes` lists them (empty when the name is not new)."""

    save_anyway = forms.BooleanField(
        required=False,
        label="Save anyway: this is a different company",
        help_text="Tick this only after checking the accounts named above.",
    )

    # No Meta: AccountAdmin's form factory gives the model and its fields.

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lookalikes: list[models.Account] = []

    @property
    def changed_data(self):
        # The confirmation is not a change to the account (nor to its audit trail).
        return [name for name in super().changed_data if name != "save_anyway"]

    @property
    def held_as_lookalike(self) -> bool:
        """Whether the form was refused for looking like existing accounts."""
        return self.has_error("__all__", code="lookalike")

    def clean(self):
        cleaned = super().clean()
        name = cleaned.get("name") or ""
        adding = self.instance.pk is None
        if not name or (not adding and models.company_name_key(name) == self.instance.name_key):
            return cleaned
        self.lookalikes = accounts_like(
            name=name, domain=cleaned.get("domain") or "", exclude_pk=self.instance.pk
        )
        if self.lookalikes and not cleaned.get("save_anyway"):
            if adding:
                todo = "If it is the same company, edit that account instead of adding this one."
            else:
                todo = (
                    "If it is the same company, move this account's leads and deals to that "
                    "one and delete this one, rather than renaming it."
                )
            raise ValidationError(
                format_html(
                    "{} {}. {} If it is a different company, tick “Save anyway” below and "
                    "save again.",
                    "This looks like an existing account:" if adding else
                    "The new name looks like an existing account:",
                    _lookalikes_html(self.lookalikes),
                    todo,
                ),
                code="lookalike",
            )  # fmt: skip
        return cleaned


@admin.register(models.Account)
class AccountAdmin(AuditedAdmin, admin.ModelAdmin):
    """Accounts are added here (and by imports). An account whose name looks
    like existing ones is saved only once the admin confirms it (see
    AccountAdminForm and templates/admin/leads/account/change_form.html), and
    the saved page then repeats which accounts it looks like."""

    form = AccountAdminForm
    list_display = ("name", "domain", "industry", "segment", "employees", "country", "owner")
    list_filter = ("segment", "industry", "country", "region")
    search_fields = ("name", "domain", "external_id")
    list_select_related = ("owner",)
    autocomplete_fields = ("parent", "owner")
    readonly_fields = ("name_key", "created_at", "updated_at")

    def get_fields(self, request, obj=None):
        # The confirmation box is shown by the template, and only when needed.
        return [name for name in super().get_fields(request, obj) if name != "save_anyway"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if form.lookalikes:
            todo = (
                "move this account's leads and deals to the existing one, then delete this one"
                if change
                else f"delete “{obj.name}” and edit the existing account instead"
            )
            messages.warning(
                request,
                format_html(
                    "“{}” was saved, and it looks like an existing account: {}. If they turn "
                    "out to be the same company, {}.",
                    obj.name,
                    _lookalikes_html(form.lookalikes),
                    todo,
                ),
            )


class CampaignSpendInline(admin.TabularInline):
    model = models.CampaignSpend
    extra = 1


@admin.register(models.Campaign)
class CampaignAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("name", "channel", "starts_on", "ends_on", "budget")
    list_filter = ("channel",)
    search_fields = ("name", "description")
    inlines = [CampaignSpendInline]


@admin.register(models.ContentAsset)
class ContentAssetAdmin(admin.ModelAdmin):
    list_display = ("title", "kind", "funnel_stage", "campaign")
    list_filter = ("kind", "funnel_stage")
    search_fields = ("title", "url")
    list_select_related = ("campaign",)
    autocomplete_fields = ("campaign",)


@admin.register(models.Lead)
class LeadAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("email", "first_name", "last_name", "company", "stage", "score", "owner")
    list_filter = ("stage", "segment", "source_channel", "is_high_intent")
    search_fields = ("email", "first_name", "last_name", "company")
    list_select_related = ("owner",)
    autocomplete_fields = ("account", "owner", "source_campaign")
    readonly_fields = ("stage", "stage_changed_at", "version", "created_at", "updated_at")
    show_full_result_count = False  # no COUNT(*) over 200k leads on every page


@admin.register(models.Touchpoint)
class TouchpointAdmin(admin.ModelAdmin):
    list_display = ("type", "lead", "channel", "campaign", "asset", "occurred_at", "source")
    list_filter = ("type", "channel", "source")
    search_fields = ("lead__email", "external_id")
    list_select_related = ("lead", "campaign", "asset")
    raw_id_fields = ("lead", "campaign", "asset", "api_key")
    show_full_result_count = False


@admin.register(models.Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ("kind", "subject", "lead", "opportunity", "actor", "occurred_at")
    list_filter = ("kind",)
    search_fields = ("subject", "lead__email")
    list_select_related = ("lead", "opportunity", "actor")
    raw_id_fields = ("lead", "opportunity", "account", "actor")
    show_full_result_count = False
    ordering = ("-id",)  # newest first by primary key: no index on the time alone


@admin.register(models.Opportunity)
class OpportunityAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("name", "account", "stage", "amount", "owner", "closed_on")
    list_filter = ("stage", "is_marketing_sourced", "source_channel", "product")
    search_fields = ("name", "account__name", "external_id")
    list_select_related = ("account", "owner")
    raw_id_fields = ("account", "source_lead", "owner")
    show_full_result_count = False
    readonly_fields = ("stage", "stage_changed_at", "version", "created_at", "updated_at")


@admin.register(models.Competitor)
class CompetitorAdmin(admin.ModelAdmin):
    list_display = ("name", "website", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name",)


@admin.register(models.Objection)
class ObjectionAdmin(admin.ModelAdmin):
    list_display = ("label", "is_active")
    list_filter = ("is_active",)
    search_fields = ("label",)


@admin.register(models.FeedbackReason)
class FeedbackReasonAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("label", "code", "applies_to", "is_active", "position")
    list_filter = ("is_active",)
    list_editable = ("is_active", "position")
    search_fields = ("label", "code")
    prepopulated_fields = {"code": ("label",)}


@admin.register(models.LeadStageChange)
class LeadStageChangeAdmin(admin.ModelAdmin):
    list_display = ("lead", "from_stage", "to_stage", "actor", "reason", "changed_at")
    list_filter = ("to_stage", "from_stage")
    raw_id_fields = ("lead", "actor")
    search_fields = ("lead__email",)
    list_select_related = ("lead", "actor", "reason")
    show_full_result_count = False
    ordering = ("-id",)  # newest first by primary key: no index on the time alone


@admin.register(models.OpportunityStageChange)
class OpportunityStageChangeAdmin(admin.ModelAdmin):
    list_display = ("opportunity", "from_stage", "to_stage", "actor", "changed_at")
    list_filter = ("to_stage", "from_stage")
    search_fields = ("opportunity__name", "opportunity__account__name", "note")
    raw_id_fields = ("opportunity", "actor")
    list_select_related = ("opportunity", "actor")
    show_full_result_count = False
    ordering = ("-id",)  # newest first by primary key: no index on the time alone


@admin.register(models.LeadFeedback)
class LeadFeedbackAdmin(admin.ModelAdmin):
    list_display = ("lead", "verdict", "reason", "author", "competitor", "created_at")
    list_filter = ("verdict", "reason", "channel")
    raw_id_fields = ("lead", "author", "campaign")
    search_fields = ("lead__email", "note")
    list_select_related = ("lead", "reason", "author", "competitor")


@admin.register(models.ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("original_name", "kind", "status", "total_rows", "error_count", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("original_name", "file_sha256")
    readonly_fields = [f.name for f in models.ImportJob._meta.fields]


@admin.register(models.ImportRowError)
class ImportRowErrorAdmin(SystemTableAdmin, admin.ModelAdmin):
    """The rows an import could not take (written by the import, read here)."""

    list_display = ("job", "row_number", "errors")
    list_filter = ("job__kind",)
    search_fields = ("job__original_name",)
    list_select_related = ("job",)
    show_full_result_count = False


@admin.register(models.ApiKey)
class ApiKeyAdmin(AuditedAdmin, admin.ModelAdmin):
    """Keys are created here (the key is shown once, in a message) and revoked
    with the action; only a hash is stored."""

    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    fields = ("name", "rate_limit_per_minute", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        from leads.api_keys import api_key_create

        api_key, raw_key = api_key_create(
            name=obj.name, created_by=request.user, rate_limit_per_minute=obj.rate_limit_per_minute
        )
        obj.pk = api_key.pk
        obj.__dict__.update(api_key.__dict__)
        messages.warning(
            request,
            f"The API key for “{api_key.name}” is {raw_key} — copy it now; it will not be shown again.",
        )

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request, queryset):
        from leads.api_keys import api_key_revoke

        keys = list(queryset.filter(revoked_at__isnull=True))
        for api_key in keys:
            api_key_revoke(api_key=api_key, actor=request.user)
        self.message_user(request, f"{len(keys)} key(s) revoked.")


@admin.register(models.ApiKeyUsage)
class ApiKeyUsageAdmin(SystemTableAdmin, admin.ModelAdmin):
    """The rate limiter's per-minute request counts (written by the API)."""

    list_display = ("api_key", "window_start", "requests")
    list_filter = ("api_key", "window_start")
    search_fields = ("api_key__name", "api_key__prefix")
    list_select_related = ("api_key",)
    show_full_result_count = False

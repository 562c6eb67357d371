"""Shared goals, QBR records, reporting settings, and the tables the closed-loop
figures are read from: stored attribution results (with the weights used),
per-lead funnel facts, the daily and monthly stage-flow rollups, and the queue
of changes that keeps them current.

The derived tables (`AttributionPath`, `AttributionCredit`, `LeadFunnel`,
`StageFlowDaily`, `StageFlowMonthly`) are written only by `reporting.rollups`:
incrementally from `PendingChange` rows (which database triggers add in the
same transaction as the change they describe, see migration 0002), or from scratch by
`reporting_rebuild`. Their foreign keys to users, campaigns, assets and SLA
versions carry no database constraint: they are copies, read for filtering.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Now
from django.urls import reverse

from leads.models import Channel, Segment
from reporting.attribution import MODEL_LABELS

__all__ = [
    "AttributionCredit",
    "AttributionKind",
    "AttributionPath",
    "AttributionScheme",
    "GoalMetric",
    "LeadFunnel",
    "PendingChange",
    "QuarterlyReview",
    "RefreshState",
    "ReportingSettings",
    "SharedGoal",
    "StageFlowDaily",
    "StageFlowMonthly",
]

MODEL_CHOICES = list(MODEL_LABELS.items())


def _copy_fk(to, **kwargs):
    """A foreign key on a derived row: no constraint, no reverse accessor."""
    return models.ForeignKey(
        to,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        **kwargs,
    )


# --- Attribution ------------------------------------------------------------------------


class AttributionKind(models.TextChoices):
    PIPELINE = "pipeline", "Pipeline (touches up to the opportunity's creation)"
    REVENUE = "revenue", "Revenue (touches up to the win)"


class AttributionScheme(models.Model):
    """The weights of one attribution model, exactly as applied. Every credit
    row points at the scheme it was computed with, so a later change of
    weights never rewrites what an older result meant."""

    model = models.CharField(max_length=20, choices=MODEL_CHOICES)
    weights = models.JSONField(help_text="Positions and their shares, or the half-life.")
    signature = models.CharField(max_length=64, help_text="SHA-256 of the model and weights.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "signature"], name="attribution_scheme_unique"
            ),
        ]

    def __str__(self):
        return f"{self.get_model_display()} {self.weights}"


class AttributionPath(models.Model):
    """One opportunity's path of touches for pipeline or revenue credit.

    A path with no touches (a deal without a source lead, or whose lead had
    no touch before the moment) is stored too: it is the unattributed part,
    so credited and uncredited amounts add up to the whole."""

    opportunity = models.ForeignKey(
        "leads.Opportunity", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=10, choices=AttributionKind.choices)
    day = models.DateField(help_text="Creation day (pipeline) or close day (revenue).")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    segment = models.CharField(max_length=20, choices=Segment.choices, blank=True)
    owner = _copy_fk(settings.AUTH_USER_MODEL)
    touches = models.PositiveIntegerField(default=0)
    marketing_touches = models.PositiveIntegerField(
        default=0, help_text="Touches in a marketing channel: > 0 means marketing-influenced."
    )
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["opportunity", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["opportunity", "kind"], name="attribution_path_unique"),
        ]
        indexes = [models.Index(fields=["kind", "day"], name="attribution_path_day_idx")]

    def __str__(self):
        return f"{self.kind} path of {self.opportunity_id}: {self.touches} touches"

    @property
    def is_influenced(self) -> bool:
        return self.marketing_touches > 0


class AttributionCredit(models.Model):
    """The credit one model gives to one (channel, campaign, asset) on one
    opportunity's path: the summed weight of its touches there (the weights
    of a path sum to 1 per model) and that share of the amount."""

    opportunity = models.ForeignKey(
        "leads.Opportunity", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=10, choices=AttributionKind.choices)
    model = models.CharField(max_length=20, choices=MODEL_CHOICES)
    scheme = models.ForeignKey(AttributionScheme, on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    segment = models.CharField(max_length=20, choices=Segment.choices, blank=True)
    owner = _copy_fk(settings.AUTH_USER_MODEL)
    channel = models.CharField(max_length=30, choices=Channel.choices, blank=True)
    campaign = _copy_fk("leads.Campaign")
    asset = _copy_fk("leads.ContentAsset")
    touches = models.PositiveIntegerField()
    weight = models.FloatField()
    credit = models.DecimalField(max_digits=18, decimal_places=4)

    class Meta:
        ordering = ["opportunity", "kind", "model", "-weight"]
        indexes = [
            models.Index(
                fields=["kind", "model", "day"],
                include=["channel", "campaign", "asset", "segment", "owner", "weight", "credit"],
                name="attribution_credit_read_idx",
            ),
            models.Index(fields=["opportunity", "kind"], name="attribution_credit_opp_idx"),
        ]

    def __str__(self):
        return f"{self.model} {self.kind} credit on {self.opportunity_id}: {self.weight:.3f}"


# --- Leads: per-lead facts and the daily stage-flow rollup ------------------------------


class LeadFunnel(models.Model):
    """One lead's way through the funnel: when it first entered each stage
    (from its stage-change rows) and its latest response clock (from the
    lead). Dimensions are the lead's when the row was last computed."""

    lead = models.OneToOneField(
        "leads.Lead", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    created_at = models.DateTimeField()
    segment = models.CharField(max_length=20, choices=Segment.choices, blank=True)
    owner = _copy_fk(settings.AUTH_USER_MODEL)
    source_channel = models.CharField(max_length=30, choices=Channel.choices, blank=True)
    source_campaign = _copy_fk("leads.Campaign")
    sla_version = _copy_fk("sla.SlaVersion")
    mql_at = models.DateTimeField(null=True, blank=True, help_text="The latest MQL (the lead's).")
    response_due_at = models.DateTimeField(null=True, blank=True)
    first_contact_at = models.DateTimeField(null=True, blank=True)
    reached_mql_at = models.DateTimeField(null=True, blank=True)
    reached_sal_at = models.DateTimeField(null=True, blank=True)
    reached_sql_at = models.DateTimeField(null=True, blank=True)
    reached_opportunity_at = models.DateTimeField(null=True, blank=True)
    reached_customer_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    disqualified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="lead_funnel_created_idx"),
            models.Index(fields=["mql_at"], name="lead_funnel_mql_idx"),
            models.Index(fields=["reached_customer_at"], name="lead_funnel_customer_idx"),
        ]

    def __str__(self):
        return f"Funnel of lead {self.lead_id}"


class StageFlowDaily(models.Model):
    """How many lead stage changes of one kind happened on one day, by the
    lead's SLA version, segment, source channel and the rep (the change's
    actor, else the lead's owner). Each stage-change row is counted exactly
    once: incrementally, or by a rebuild."""

    day = models.DateField()
    from_stage = models.CharField(max_length=20, blank=True)
    to_stage = models.CharField(max_length=20)
    sla_version = _copy_fk("sla.SlaVersion")
    segment = models.CharField(max_length=20, blank=True)
    owner = _copy_fk(settings.AUTH_USER_MODEL)
    channel = models.CharField(max_length=30, blank=True)
    changes = models.PositiveIntegerField(default=0)
    with_reason = models.PositiveIntegerField(default=0, help_text="Changes with a reason code.")

    class Meta:
        ordering = ["day"]
        verbose_name_plural = "stage flow (daily)"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "day",
                    "from_stage",
                    "to_stage",
                    "sla_version",
                    "segment",
                    "owner",
                    "channel",
                ],
                name="stage_flow_daily_unique",
                nulls_distinct=False,
            ),
        ]

    def __str__(self):
        return f"{self.day}: {self.from_stage or '∅'} → {self.to_stage} × {self.changes}"


class StageFlowMonthly(models.Model):
    """The daily stage-flow rollup summed by month, without the channel (no
    figure reads it): what period sums read for the months a period covers
    whole, the daily rows only for the days around them. Written in the same
    transaction as the daily rows, from the same stage-change rows, so each
    stage change is counted exactly once in each, and a month's row always
    equals the sum of its daily rows."""

    month = models.DateField(help_text="The month's first day.")
    from_stage = models.CharField(max_length=20, blank=True)
    to_stage = models.CharField(max_length=20)
    sla_version = _copy_fk("sla.SlaVersion", db_index=False)
    segment = models.CharField(max_length=20, blank=True)
    owner = _copy_fk(settings.AUTH_USER_MODEL, db_index=False)
    changes = models.PositiveIntegerField(default=0)
    with_reason = models.PositiveIntegerField(default=0, help_text="Changes with a reason code.")

    class Meta:
        ordering = ["month"]
        verbose_name_plural = "stage flow (monthly)"
        constraints = [
            models.UniqueConstraint(
                fields=["month", "from_stage", "to_stage", "sla_version", "segment", "owner"],
                name="stage_flow_monthly_unique",
                nulls_distinct=False,
            ),
        ]

    def __str__(self):
        return f"{self.month:%Y-%m}: {self.from_stage or '∅'} → {self.to_stage} × {self.changes}"


class PendingChange(models.Model):
    """A change the reporting tables have not taken in yet. Written by
    database triggers on touchpoints, leads, stage changes and opportunities,
    in the transaction of the change; consumed (deleted) by the refresh in the
    transaction that applies it, so each change is applied exactly once."""

    class Source(models.TextChoices):
        TOUCHPOINT = "t", "Touchpoint"
        LEAD = "l", "Lead"
        STAGE_CHANGE = "s", "Lead stage change"
        OPPORTUNITY = "o", "Opportunity"

    source = models.CharField(max_length=1, choices=Source.choices)
    lead_id = models.BigIntegerField(null=True, blank=True)
    opportunity_id = models.BigIntegerField(null=True, blank=True)
    stage_change_id = models.BigIntegerField(null=True, blank=True)
    queued_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"pending change {self.pk}"


class RefreshState(models.Model):
    """When the reporting tables were last brought up to date (one row), and
    their generation: bumped in the transaction of every refresh batch that
    changed them and of every rebuild, so a figure cached under a generation
    is never served once the tables moved on (reporting.figure_cache)."""

    refreshed_at = models.DateTimeField(null=True, blank=True)
    rebuilt_at = models.DateTimeField(null=True, blank=True)
    rebuild_seconds = models.FloatField(null=True, blank=True)
    changes_applied = models.PositiveBigIntegerField(default=0)
    generation = models.PositiveBigIntegerField(
        default=0, help_text="Bumped whenever the derived tables change (keys cached figures)."
    )
    # A row made again (a flushed or re-created database) starts counting from
    # 0 again: its new epoch keeps it from matching figures cached before.
    cache_epoch = models.UUIDField(default=uuid.uuid4, editable=False)

    class Meta:
        verbose_name = "reporting refresh state"

    def __str__(self):
        return f"refreshed {self.refreshed_at}"

    @property
    def figures_tag(self) -> str:
        """What cached figures must carry to be served: this row's epoch and
        generation (reporting.figure_cache)."""
        return f"{self.cache_epoch}:{self.generation}"


# --- Settings, goals and the QBR -----------------------------------------------------------


class ReportingSettings(models.Model):
    """Inputs of CAC and LTV that the data does not hold (one row; RevOps
    admins edit it in the admin)."""

    sales_cost_per_month = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
        help_text="Sales cost to add to marketing spend in CAC (0: CAC counts spend only).",
    )
    gross_margin_percent = models.PositiveSmallIntegerField(
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="LTV counts this share of revenue (100: revenue LTV).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "reporting settings"
        verbose_name_plural = "reporting settings"

    def __str__(self):
        return "Reporting settings"


class GoalMetric(models.TextChoices):
    """What a shared goal can measure (see reporting.kpis.goal_actual)."""

    SOURCED_PIPELINE = "sourced_pipeline", "Sales-accepted pipeline from marketing-sourced leads"
    NEW_PIPELINE = "new_pipeline", "New pipeline (all sources)"
    WON_REVENUE = "won_revenue", "Won revenue"
    INFLUENCED_REVENUE = "influenced_revenue", "Marketing-influenced revenue"
    MQLS = "mqls", "MQLs delivered"
    ACCEPTANCE_RATE = "acceptance_rate", "Lead acceptance rate (%)"
    RESPONSE_WITHIN_SLA = "response_within_sla", "First contact within SLA (%)"
    WIN_RATE = "win_rate", "Win rate (%)"
    NEW_CUSTOMERS = "new_customers", "New customers"
    OPPORTUNITIES = "opportunities", "Opportunities created"


class SharedGoal(models.Model):
    """A target both teams signed up to, for a period, on one metric; its
    progress is computed from the same figures as the dashboard."""

    title = models.CharField(max_length=200)
    metric = models.CharField(max_length=30, choices=GoalMetric.choices)
    target = models.DecimalField(
        max_digits=16, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    starts_on = models.DateField()
    ends_on = models.DateField()
    segment = models.CharField(
        max_length=20, choices=Segment.choices, blank=True, help_text="Empty: every segment."
    )
    team = models.ForeignKey(
        "leads.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: every team.",
    )
    note = models.TextField(blank=True, help_text="Why this goal, and how both teams get there.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-ends_on", "title"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__gte=models.F("starts_on")),
                name="goal_ends_after_start",
            ),
            models.CheckConstraint(condition=models.Q(target__gt=0), name="goal_target_positive"),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("reporting:goal_detail", args=[self.pk])


class QuarterlyReview(models.Model):
    """What both teams recorded at a quarter's business review: the one
    improvement they commit to next quarter, and notes."""

    quarter_start = models.DateField(unique=True, help_text="The first day of the quarter.")
    improvement = models.TextField(help_text="The one improvement both teams commit to next.")
    improvement_owner = models.CharField(
        max_length=200, blank=True, help_text="Who sees it through (names or teams)."
    )
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-quarter_start"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quarter_start__day=1)
                & models.Q(quarter_start__month__in=[1, 4, 7, 10]),
                name="qbr_quarter_start",
            ),
        ]

    def __str__(self):
        return f"QBR {self.quarter_start:%Y-%m}"

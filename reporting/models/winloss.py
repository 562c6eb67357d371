"""Win/loss retrospectives, their decision drivers and action items.

A retrospective is the blameless review both teams hold after a closed deal:
one per opportunity, with participants from marketing and from sales. It
records what decided the deal (drivers by category, each with a sentiment)
and never who was at fault. Action items point at what they change (an SLA
version, the ICP, a persona, a campaign or a content asset); publishing a new
SLA or ICP version can close them, so the agreement's history shows why it
changed. Writes go through `reporting.winloss_services`.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from leads.models import OpportunityStage

__all__ = [
    "ActionItem",
    "DecisionDriver",
    "DriverCategory",
    "Retrospective",
    "RetrospectiveParticipant",
]

DECIDED_AT_STAGES = [
    (value, label)
    for value, label in OpportunityStage.choices
    if value in OpportunityStage.open_stages()
]


class DriverCategory(models.Model):
    """A kind of decision driver (pricing and packaging, product fit, ...).
    Edited in the admin; retired categories are deactivated, not deleted."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, help_text="What belongs in this category.")
    position = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "driver categories"

    def __str__(self):
        return self.name


class Retrospective(models.Model):
    """The win/loss review of one closed deal."""

    class Outcome(models.TextChoices):
        WON = "won", "Won"
        LOST = "lost", "Lost"

    class LossType(models.TextChoices):
        COMPETITOR = "competitor", "Lost to a competitor"
        NO_DECISION = "no_decision", "No decision (status quo)"
        UNKNOWN = "unknown", "Unknown"

    class PitchMatch(models.TextChoices):
        YES = "yes", "Yes"
        PARTLY = "partly", "Partly"
        NO = "no", "No"

    opportunity = models.OneToOneField(
        "leads.Opportunity", on_delete=models.CASCADE, related_name="retrospective"
    )
    outcome = models.CharField(
        max_length=10, choices=Outcome.choices, help_text="The deal's outcome when reviewed."
    )
    loss_type = models.CharField(
        max_length=20,
        choices=LossType.choices,
        blank=True,
        help_text="For losses: how the buyer decided.",
    )
    competitor = models.ForeignKey(
        "leads.Competitor",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="retrospectives",
        help_text="Who we won against, or lost to.",
    )
    decided_at_stage = models.CharField(
        max_length=20,
        choices=DECIDED_AT_STAGES,
        blank=True,
        help_text="The stage at which the buyer effectively made up their mind.",
    )
    campaign = models.ForeignKey(
        "leads.Campaign",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="retrospectives",
        help_text="The campaign whose promise the pitch is compared with.",
    )
    pitch_match = models.CharField(
        max_length=10,
        choices=PitchMatch.choices,
        blank=True,
        help_text="Did the sales pitch match what the campaign promised?",
    )
    pitch_difference = models.TextField(blank=True, help_text="What differed.")
    key_quotes = models.TextField(blank=True, help_text="What the buyer said, one quote a line.")
    learnings = models.TextField(blank=True)
    held_on = models.DateField(default=timezone.localdate)
    participants = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="RetrospectiveParticipant", related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-held_on", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(outcome="won", loss_type="")
                | (models.Q(outcome="lost") & ~models.Q(loss_type="")),
                name="retro_loss_has_decision_type",
            ),
            models.CheckConstraint(
                condition=~models.Q(loss_type="competitor") | models.Q(competitor__isnull=False),
                name="retro_competitor_loss_names_it",
            ),
        ]
        indexes = [models.Index(fields=["outcome", "held_on"], name="retro_outcome_idx")]

    def __str__(self):
        return f"Retrospective: {self.opportunity}"

    def get_absolute_url(self):
        return reverse("winloss:detail", args=[self.pk])

    @property
    def outcome_label(self) -> str:
        """'Won', or the way it was lost ('Lost to a competitor')."""
        if self.outcome == self.Outcome.LOST and self.loss_type:
            return (
                self.get_loss_type_display()
                if self.loss_type == "competitor"
                else (f"Lost: {self.get_loss_type_display().lower()}")
            )
        return self.get_outcome_display()

    @property
    def quotes(self) -> list[str]:
        return [line.strip() for line in self.key_quotes.splitlines() if line.strip()]


class RetrospectiveParticipant(models.Model):
    """Someone who took part, and the team they spoke for (from their role
    when added: Marketing, or Sales rep / Sales manager)."""

    class Team(models.TextChoices):
        MARKETING = "marketing", "Marketing"
        SALES = "sales", "Sales"
        OTHER = "other", "Other"

    retrospective = models.ForeignKey(
        Retrospective, on_delete=models.CASCADE, related_name="participant_rows"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    team = models.CharField(max_length=10, choices=Team.choices)

    class Meta:
        ordering = ["team", "user__first_name", "user__username"]
        constraints = [
            models.UniqueConstraint("retrospective", "user", name="retro_participant_unique")
        ]

    def __str__(self):
        return f"{self.user} ({self.get_team_display()})"


class DecisionDriver(models.Model):
    """One thing that decided the deal, in a category, and whether it helped
    or hurt. At most one per category and retrospective."""

    class Sentiment(models.TextChoices):
        HELPED = "helped", "Helped"
        HURT = "hurt", "Hurt"

    retrospective = models.ForeignKey(
        Retrospective, on_delete=models.CASCADE, related_name="drivers"
    )
    category = models.ForeignKey(DriverCategory, on_delete=models.PROTECT, related_name="drivers")
    sentiment = models.CharField(max_length=10, choices=Sentiment.choices)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["category__position", "category__name"]
        constraints = [
            models.UniqueConstraint("retrospective", "category", name="retro_driver_per_category")
        ]
        indexes = [models.Index(fields=["category", "sentiment"], name="driver_category_idx")]

    def __str__(self):
        return f"{self.category}: {self.get_sentiment_display().lower()}"


class ActionItem(models.Model):
    """Something a retrospective decided to change, who does it, and by when.

    It targets exactly one thing (the FK that matches `target_kind`), or
    `other` described in `target_note`. Publishing an SLA or ICP version can
    close it (`closed_by_sla_version` / `closed_by_icp_version`).
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        DROPPED = "dropped", "Dropped"

    class TargetKind(models.TextChoices):
        SLA = "sla", "The SLA"
        ICP = "icp", "The ICP"
        PERSONA = "persona", "A persona"
        CAMPAIGN = "campaign", "A campaign"
        ASSET = "asset", "A content asset"
        OTHER = "other", "Something else"

    OPEN_STATUSES = (Status.OPEN, Status.IN_PROGRESS)
    # Which target field goes with which kind.
    TARGET_FIELDS = {
        TargetKind.SLA: "sla_version",
        TargetKind.ICP: "icp_version",
        TargetKind.PERSONA: "persona",
        TargetKind.CAMPAIGN: "campaign",
        TargetKind.ASSET: "content_asset",
    }

    retrospective = models.ForeignKey(
        Retrospective, on_delete=models.CASCADE, related_name="action_items"
    )
    title = models.CharField(max_length=200, help_text="What will change.")
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    due_on = models.DateField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    target_kind = models.CharField(max_length=10, choices=TargetKind.choices)
    sla_version = models.ForeignKey(
        "sla.SlaVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    icp_version = models.ForeignKey(
        "sla.IcpVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    persona = models.ForeignKey(
        "sla.Persona", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    campaign = models.ForeignKey(
        "leads.Campaign", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    content_asset = models.ForeignKey(
        "leads.ContentAsset", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    target_note = models.CharField(
        max_length=200, blank=True, help_text="For “something else”: what it changes."
    )
    closed_by_sla_version = models.ForeignKey(
        "sla.SlaVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="closed_action_items",
    )
    closed_by_icp_version = models.ForeignKey(
        "sla.IcpVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="closed_action_items",
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["due_on", "id"]
        constraints = [
            # No target field other than the kind's own is set (the kind's own
            # may be emptied when its target is deleted).
            models.CheckConstraint(
                condition=(
                    (models.Q(target_kind="sla") | models.Q(sla_version__isnull=True))
                    & (models.Q(target_kind="icp") | models.Q(icp_version__isnull=True))
                    & (models.Q(target_kind="persona") | models.Q(persona__isnull=True))
                    & (models.Q(target_kind="campaign") | models.Q(campaign__isnull=True))
                    & (models.Q(target_kind="asset") | models.Q(content_asset__isnull=True))
                ),
                name="action_item_one_target",
            ),
            models.CheckConstraint(
                condition=~models.Q(status__in=["done", "dropped"])
                | models.Q(closed_at__isnull=False),
                name="action_item_closed_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["due_on"],
                name="action_item_open_idx",
                condition=models.Q(status__in=["open", "in_progress"]),
            ),
        ]

    def __str__(self):
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def target(self):
        """The object the item changes (None for 'other' or a deleted target)."""
        field = self.TARGET_FIELDS.get(self.target_kind)
        return getattr(self, field) if field else None

    @property
    def target_label(self) -> str:
        target = self.target
        if self.target_kind == self.TargetKind.OTHER:
            return self.target_note or "Something else"
        if target is None:
            return f"{self.get_target_kind_display()} (removed)"
        if self.target_kind in (self.TargetKind.SLA, self.TargetKind.ICP):
            return f"{self.get_target_kind_display().removeprefix('The ')} {target.label}"
        return str(target)

    @property
    def closed_by_version(self):
        return self.closed_by_sla_version or self.closed_by_icp_version

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_on < timezone.localdate()

    def close_by_version(self, version) -> "ActionItem":
        """Close this item as done by a published SLA or ICP version.
        See `reporting.winloss_services.action_item_close_by_version`."""
        from reporting.winloss_services import action_item_close_by_version

        return action_item_close_by_version(action_item=self, version=version)

"""The agreement between marketing and sales, and the machinery that holds
every lead to it: versioned SLA and ICP documents (with personas), score
evaluations, routing rules, response-clock breaches, and notifications.

A version is a document: `draft` -> `published` -> `superseded`. Exactly one
version of each kind is published (in force) at a time (a partial unique
index). Published and superseded versions, and every row that belongs to
them, are immutable: the models refuse to save them and database triggers
(migration 0003) refuse to change them, except the one move from published
to superseded.
"""

import zoneinfo
from datetime import time
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from leads.models import FunnelStage, Segment, TouchpointType


class ImmutableVersionError(ValidationError):
    """A published or superseded version (or one of its parts) was to be changed."""


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "In force"
    SUPERSEDED = "superseded", "Superseded"


class VersionedDocument(models.Model):
    number = models.PositiveIntegerField(help_text="v1, v2, ... in order of creation.")
    status = models.CharField(
        max_length=20, choices=VersionStatus.choices, default=VersionStatus.DRAFT
    )
    title = models.CharField(max_length=200)
    changelog = models.TextField(
        blank=True, help_text="What changed and why, in words both teams understand."
    )
    based_on = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-number"]

    def __str__(self):
        return f"v{self.number}: {self.title}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            stored = type(self).objects.filter(pk=self.pk).values_list("status", flat=True).first()
            if stored is not None and stored != VersionStatus.DRAFT:
                raise ImmutableVersionError(
                    f"{self.label} is {VersionStatus(stored).label.lower()} and cannot be "
                    "changed. Clone it into a new draft instead."
                )
        super().save(*args, **kwargs)

    @property
    def is_draft(self) -> bool:
        return self.status == VersionStatus.DRAFT

    @property
    def label(self) -> str:
        return f"v{self.number}"


class VersionPart(models.Model):
    """A row that belongs to a version and shares its immutability."""

    version_field = "version"

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        version = getattr(self, self.version_field)
        stored = type(version).objects.filter(pk=version.pk).values_list("status", flat=True)
        if stored and stored[0] != VersionStatus.DRAFT:
            raise ImmutableVersionError(
                f"{version.label} is {VersionStatus(stored[0]).label.lower()}; "
                "its parts cannot be changed."
            )
        super().save(*args, **kwargs)


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ValidationError(
            f"“{value}” is not a time zone. Use a name like Europe/Berlin or America/New_York."
        ) from error


class Seniority(models.TextChoices):
    ANY = "any", "Any seniority"
    MANAGER = "manager", "Manager and above"
    DIRECTOR = "director", "Director and above"
    VP = "vp", "VP and above"
    C_LEVEL = "c_level", "C-level only"


WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]


class SlaVersion(VersionedDocument):
    """One version of the service-level agreement between marketing and sales."""

    # Qualification: what makes a lead an MQL.
    mql_threshold = models.PositiveSmallIntegerField(
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="The score (fit + engagement, 0–100) at which a lead qualifies.",
    )
    required_seniority = models.CharField(
        max_length=20,
        choices=Seniority.choices,
        default=Seniority.ANY,
        help_text="Explicit criterion: the seniority the job title must show.",
    )
    required_min_employees = models.PositiveIntegerField(
        null=True, blank=True, help_text="Explicit criterion: company size at least this."
    )
    required_segments = ArrayField(
        models.CharField(max_length=20, choices=Segment.choices),
        default=list,
        blank=True,
        help_text="Explicit criterion: only these segments (none chosen: any).",
    )
    behaviour_match = models.CharField(
        max_length=3,
        choices=[("any", "At least one"), ("all", "All")],
        default="any",
        help_text="How many of the behavioural criteria a lead must meet (if any are set).",
    )
    hand_raise_qualifies = models.BooleanField(
        default=True,
        help_text="A demo or contact request qualifies a lead that meets the explicit "
        "criteria, whatever its score; it always makes the lead high-intent.",
    )
    # Engagement: how behaviour scores.
    decay_half_life_days = models.PositiveSmallIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Engagement points halve after this many days.",
    )
    # Sales commitments.
    response_hours_high_intent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.25"))],
        help_text="Business hours to first contact for high-intent leads (hand-raisers).",
    )
    response_hours_standard = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("24"),
        validators=[MinValueValidator(Decimal("0.25"))],
        help_text="Business hours to first contact for other MQLs.",
    )
    calendar_time_zone = models.CharField(
        max_length=64, default="America/Chicago", validators=[validate_time_zone]
    )
    working_days = ArrayField(
        models.PositiveSmallIntegerField(choices=WEEKDAYS),
        default=list,
        help_text="Days the response clock runs (0 = Monday).",
    )
    day_starts = models.TimeField(default=time(9))
    day_ends = models.TimeField(default=time(17))
    holidays = ArrayField(models.DateField(), default=list, blank=True)
    notify_manager_on_breach = models.BooleanField(default=True)
    reassign_after_hours = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.25"))],
        help_text="Business hours after a breach before the lead is reassigned (empty: never).",
    )
    # Marketing commitments.
    mql_commitment_per_month = models.PositiveIntegerField(
        default=300, help_text="MQLs marketing delivers each month."
    )
    mql_commitment_enterprise = models.PositiveIntegerField(null=True, blank=True)
    mql_commitment_mid_market = models.PositiveIntegerField(null=True, blank=True)
    mql_commitment_smb = models.PositiveIntegerField(null=True, blank=True)
    min_acceptance_rate = models.PositiveSmallIntegerField(
        default=70,
        validators=[MaxValueValidator(100)],
        help_text="Percent of MQLs sales should accept.",
    )
    # Feedback commitments.
    retro_amount_threshold = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        default=Decimal("5000"),
        help_text="Closed deals above this amount are due a win/loss retrospective.",
    )
    retro_due_days = models.PositiveSmallIntegerField(
        default=14, validators=[MinValueValidator(1)], help_text="Days to hold the retrospective."
    )

    class Meta(VersionedDocument.Meta):
        verbose_name = "SLA version"
        constraints = [
            models.UniqueConstraint("number", name="sla_version_number_unique"),
            models.UniqueConstraint(
                "status",
                condition=models.Q(status="published"),
                name="sla_one_version_in_force",
            ),
            models.CheckConstraint(
                condition=models.Q(day_ends__gt=models.F("day_starts")),
                name="sla_day_ends_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(mql_threshold__gte=1, mql_threshold__lte=100),
                name="sla_threshold_in_range",
            ),
        ]

    def get_absolute_url(self):
        return reverse("sla:sla_detail", args=[self.pk])

    def clean(self):
        errors = {}
        if self.day_starts and self.day_ends and self.day_ends <= self.day_starts:
            errors["day_ends"] = "The working day must end after it starts."
        if not self.working_days:
            errors["working_days"] = "Choose at least one working day."
        if (
            self.response_hours_high_intent
            and self.response_hours_standard
            and self.response_hours_high_intent > self.response_hours_standard
        ):
            errors["response_hours_high_intent"] = (
                "High-intent leads should not wait longer than the others."
            )
        if errors:
            raise ValidationError(errors)


class EngagementGroup(VersionPart):
    """A family of behaviour whose points are capped together (e.g. web visits)."""

    version = models.ForeignKey(SlaVersion, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=50)
    cap = models.PositiveSmallIntegerField(
        validators=[MaxValueValidator(100)], help_text="At most this many points from the group."
    )

    class Meta:
        ordering = ["version", "name"]
        constraints = [
            models.UniqueConstraint("version", "name", name="engagement_group_unique"),
        ]

    def __str__(self):
        return f"{self.name} (cap {self.cap})"


class EngagementRule(VersionPart):
    """Points for one kind of touchpoint (optionally only on assets of one
    funnel stage). The most specific rule for a touchpoint applies."""

    version = models.ForeignKey(
        SlaVersion, on_delete=models.CASCADE, related_name="engagement_rules"
    )
    touchpoint_type = models.CharField(max_length=30, choices=TouchpointType.choices)
    asset_stage = models.CharField(
        max_length=10, choices=FunnelStage.choices, blank=True, help_text="Empty: any asset."
    )
    points = models.SmallIntegerField(validators=[MinValueValidator(-50), MaxValueValidator(50)])
    group = models.ForeignKey(EngagementGroup, on_delete=models.CASCADE, related_name="rules")

    class Meta:
        ordering = ["version", "touchpoint_type", "asset_stage"]
        constraints = [
            models.UniqueConstraint(
                "version", "touchpoint_type", "asset_stage", name="engagement_rule_unique"
            ),
        ]

    def __str__(self):
        stage = f" ({self.get_asset_stage_display()})" if self.asset_stage else ""
        return f"{self.get_touchpoint_type_display()}{stage}: {self.points:+d}"


class BehaviourCriterion(VersionPart):
    """An implicit qualification criterion: at least N touchpoints of these
    kinds within D days (e.g. pricing page 3+ times in 7 days)."""

    version = models.ForeignKey(
        SlaVersion, on_delete=models.CASCADE, related_name="behaviour_criteria"
    )
    label = models.CharField(max_length=200)
    touchpoint_types = ArrayField(models.CharField(max_length=30, choices=TouchpointType.choices))
    asset_stage = models.CharField(
        max_length=10, choices=FunnelStage.choices, blank=True, help_text="Empty: any."
    )
    asset_kind = models.CharField(
        max_length=30, blank=True, help_text="Only assets of this kind, e.g. pricing_page."
    )
    min_count = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    within_days = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )

    class Meta:
        ordering = ["version", "id"]

    def __str__(self):
        return self.label


class IcpVersion(VersionedDocument):
    """One version of the ideal customer profile: fit rules and personas."""

    max_fit_points = models.PositiveSmallIntegerField(
        default=40,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Fit points are capped here; engagement makes up the rest of the score.",
    )

    class Meta(VersionedDocument.Meta):
        verbose_name = "ICP version"
        constraints = [
            models.UniqueConstraint("number", name="icp_version_number_unique"),
            models.UniqueConstraint(
                "status",
                condition=models.Q(status="published"),
                name="icp_one_version_in_force",
            ),
        ]

    def get_absolute_url(self):
        return reverse("sla:icp_detail", args=[self.pk])


class FitRule(VersionPart):
    """Firmographic fit: points when the lead's company matches."""

    class Attribute(models.TextChoices):
        INDUSTRY = "industry", "Industry is one of"
        SEGMENT = "segment", "Segment is one of"
        COUNTRY = "country", "Country is one of"
        REGION = "region", "Region is one of"
        TECHNOLOGY = "technology", "Uses one of these technologies"
        EMPLOYEES = "employees", "Employees between"
        REVENUE = "revenue", "Annual revenue (USD millions) between"

    BANDED = frozenset({Attribute.EMPLOYEES, Attribute.REVENUE})

    version = models.ForeignKey(IcpVersion, on_delete=models.CASCADE, related_name="fit_rules")
    attribute = models.CharField(max_length=20, choices=Attribute.choices)
    values = ArrayField(
        models.CharField(max_length=100),
        default=list,
        blank=True,
        help_text="For lists: the values that fit (case-insensitive).",
    )
    min_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    max_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    points = models.SmallIntegerField(validators=[MinValueValidator(-50), MaxValueValidator(50)])

    class Meta:
        ordering = ["version", "attribute", "id"]

    def __str__(self):
        return f"{self.describe()}: {self.points:+d}"

    def describe(self) -> str:
        if self.attribute in self.BANDED:
            low = f"{self.min_value:g}" if self.min_value is not None else "any"
            high = f"{self.max_value:g}" if self.max_value is not None else "any"
            return f"{self.get_attribute_display()} {low} and {high}"
        return f"{self.get_attribute_display()} {', '.join(self.values)}"

    def clean(self):
        if self.attribute in self.BANDED:
            if self.min_value is None and self.max_value is None:
                raise ValidationError("Give a lower bound, an upper bound, or both.")
            if (
                self.min_value is not None
                and self.max_value is not None
                and self.min_value > self.max_value
            ):
                raise ValidationError({"max_value": "The upper bound is below the lower one."})
        elif not self.values:
            raise ValidationError({"values": "List at least one value."})


class Persona(VersionPart):
    """A buyer persona both teams train on."""

    class BuyingRole(models.TextChoices):
        ECONOMIC_BUYER = "economic_buyer", "Economic buyer"
        CHAMPION = "champion", "Champion"
        TECHNICAL_EVALUATOR = "technical_evaluator", "Technical evaluator"
        END_USER = "end_user", "End user"

    version = models.ForeignKey(IcpVersion, on_delete=models.CASCADE, related_name="personas")
    name = models.CharField(max_length=100)
    buying_role = models.CharField(max_length=30, choices=BuyingRole.choices)
    title_keywords = ArrayField(
        models.CharField(max_length=100),
        default=list,
        help_text="Job titles containing any of these words match the persona (case-insensitive).",
    )
    summary = models.TextField(blank=True)
    pain_points = models.TextField(blank=True)
    value_propositions = models.TextField(blank=True)
    proof_points = models.TextField(blank=True)
    objections = models.TextField(blank=True, help_text="Common objections and how to answer.")

    class Meta:
        ordering = ["version", "name"]
        constraints = [models.UniqueConstraint("version", "name", name="persona_name_unique")]

    def __str__(self):
        return f"{self.name} ({self.get_buying_role_display()})"

    def get_absolute_url(self):
        return reverse("sla:persona_detail", args=[self.pk])

    def matches(self, title: str) -> bool:
        title = (title or "").lower()
        return any(keyword.lower() in title for keyword in self.title_keywords if keyword)


class ScoreEvaluation(models.Model):
    """How a lead scored under one SLA and ICP version: the total and its parts.

    One row per (lead, SLA version, ICP version), replaced by each re-score
    under the same versions, so the history of versions stays readable.
    """

    # No index of its own: evaluation_lead_idx and the per-versions unique
    # index both lead with lead_id (a third would only slow every re-score).
    lead = models.ForeignKey(
        "leads.Lead", on_delete=models.CASCADE, related_name="evaluations", db_index=False
    )
    sla_version = models.ForeignKey(SlaVersion, on_delete=models.PROTECT, related_name="+")
    icp_version = models.ForeignKey(IcpVersion, on_delete=models.PROTECT, related_name="+")
    fit = models.SmallIntegerField()
    engagement = models.SmallIntegerField()
    total = models.SmallIntegerField()
    parts = models.JSONField(default=list, help_text="[{kind, label, points}]")
    qualifies = models.BooleanField()
    high_intent = models.BooleanField()
    reasons = models.JSONField(default=list, help_text="Why it does or does not qualify.")
    persona = models.ForeignKey(
        Persona, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    evaluated_at = models.DateTimeField()

    class Meta:
        ordering = ["-evaluated_at"]
        constraints = [
            models.UniqueConstraint(
                "lead", "sla_version", "icp_version", name="evaluation_per_versions_unique"
            )
        ]
        indexes = [models.Index(fields=["lead", "-evaluated_at"], name="evaluation_lead_idx")]

    def __str__(self):
        return f"{self.lead_id}: {self.total} under {self.sla_version_id}/{self.icp_version_id}"


class RoutingRule(models.Model):
    """Ordered rules, first match wins: which team gets a newly qualified lead.
    Empty criteria match anything."""

    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(max_length=100)
    segments = ArrayField(
        models.CharField(max_length=20, choices=Segment.choices), default=list, blank=True
    )
    regions = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    countries = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    industries = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    min_employees = models.PositiveIntegerField(null=True, blank=True)
    max_employees = models.PositiveIntegerField(null=True, blank=True)
    team = models.ForeignKey("leads.Team", on_delete=models.CASCADE, related_name="routing_rules")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(min_employees__isnull=True)
                | models.Q(max_employees__isnull=True)
                | models.Q(max_employees__gte=models.F("min_employees")),
                name="routing_rule_employee_band_ordered",
                violation_error_message="The most employees is below the fewest.",
            ),
        ]

    def __str__(self):
        return f"{self.position}. {self.name} → {self.team}"

    def clean(self):
        if (
            self.min_employees is not None
            and self.max_employees is not None
            and self.min_employees > self.max_employees
        ):
            raise ValidationError(
                {
                    "max_employees": f"The most employees ({self.max_employees:,}) is below the "
                    f"fewest ({self.min_employees:,}): no lead could match this rule."
                }
            )


class RoutingSettings(models.Model):
    """The default owner for leads no rule or team member can take (one row)."""

    default_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = verbose_name_plural = "routing settings"

    def __str__(self):
        return f"Default owner: {self.default_owner or 'none'}"


class RoutingCounter(models.Model):
    """A seller's place in their team's weighted round robin: the next lead
    goes to the available seller with the fewest `assigned` per unit of
    capacity. `assigned` counts the leads routed to the seller plus, when
    they come back from away (or join, or are re-activated), the turns they
    missed, so they rejoin level with the team instead of catching up."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="routing_counter"
    )
    assigned = models.PositiveIntegerField(default=0)
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.user}: {self.assigned}"


class RoutingRotation(models.Model):
    """How far a team's round robin has got: the leads per unit of capacity
    of the seller whose turn it last was. A seller below this level was not
    available for those turns; routing lifts them to it."""

    team = models.OneToOneField(
        "leads.Team", on_delete=models.CASCADE, related_name="routing_rotation"
    )
    level = models.FloatField(default=0)

    def __str__(self):
        return f"{self.team}: {self.level:g} leads per unit of capacity"


class Breach(models.Model):
    """A response clock that ran out before first contact. One per lead and due
    time (a unique constraint: a repeated sweep cannot record it twice)."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="breaches")
    sla_version = models.ForeignKey(
        SlaVersion, on_delete=models.PROTECT, null=True, related_name="breaches"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    due_at = models.DateTimeField()
    breached_at = models.DateTimeField()
    manager_notified_at = models.DateTimeField(null=True, blank=True)
    reassigned_at = models.DateTimeField(null=True, blank=True)
    reassigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-breached_at"]
        verbose_name_plural = "breaches"
        constraints = [
            models.UniqueConstraint("lead", "due_at", name="breach_once_per_clock"),
        ]
        indexes = [
            models.Index(
                fields=["breached_at"],
                name="breach_pending_reassign_idx",
                condition=models.Q(reassigned_at__isnull=True),
            )
        ]

    def __str__(self):
        return f"Breach on lead {self.lead_id} due {self.due_at:%Y-%m-%d %H:%M}"


class RescoreJob(models.Model):
    """Re-scoring every open lead after a publish: a resumable background job."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    sla_version = models.ForeignKey(SlaVersion, on_delete=models.PROTECT, related_name="+")
    icp_version = models.ForeignKey(IcpVersion, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    qualified = models.PositiveIntegerField(default=0, help_text="Leads that became MQLs.")
    lane_count = models.PositiveSmallIntegerField(
        default=2, help_text="How many lanes (tasks) score the leads in parallel."
    )
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Re-score under {self.sla_version_id}/{self.icp_version_id}: {self.status}"

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return min(100, round(100 * self.processed / self.total)) if self.total else 0


class RescoreLane(models.Model):
    """One of a job's parallel lanes: the leads whose id modulo the lane count
    is this lane's number, with its own resume point."""

    job = models.ForeignKey(RescoreJob, on_delete=models.CASCADE, related_name="lanes")
    number = models.PositiveSmallIntegerField()
    last_lead_id = models.BigIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["job", "number"]
        constraints = [models.UniqueConstraint("job", "number", name="rescore_lane_unique")]

    def __str__(self):
        return f"lane {self.number} of job {self.job_id}"


class NotificationQuerySet(models.QuerySet):
    def unread(self):
        return self.filter(read_at__isnull=True)

    def for_user(self, user):
        return self.filter(recipient=user)


class Notification(models.Model):
    """An in-app message to one user (a lead routed to them, a breach, ...)."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True, help_text="Where the notification leads.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)
    email_wanted = models.BooleanField(default=False)
    emailed_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["recipient", "-created_at"],
                name="notification_unread_idx",
                condition=models.Q(read_at__isnull=True),
            ),
            models.Index(fields=["recipient", "-created_at"], name="notification_recipient_idx"),
            models.Index(
                fields=["created_at"],
                name="notification_email_due_idx",
                condition=models.Q(email_wanted=True, emailed_at__isnull=True),
            ),
        ]

    def __str__(self):
        return self.title

    @property
    def is_read(self) -> bool:
        return self.read_at is not None

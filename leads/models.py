"""The shared record both teams work from: accounts, leads (people), campaigns,
content, touchpoints, sales activities, opportunities, their stage histories,
and the feedback sales gives on leads.

Single-row rules live here, with integrity in `Meta.constraints`; every write
that changes a stage goes through `leads.services`.
"""

import hashlib
import re

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import OpClass
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

# Public mail providers: an address there says nothing about the company.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "hotmail.com",
        "hotmail.co.uk", "outlook.com", "live.com", "msn.com", "aol.com", "icloud.com", "me.com",
        "mac.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de", "gmx.net", "web.de",
        "mail.com", "zoho.com", "yandex.com", "yandex.ru", "qq.com", "163.com", "126.com",
        "comcast.net", "verizon.net", "att.net", "free.fr", "orange.fr", "laposte.net",
        "libero.it", "t-online.de", "fastmail.com", "hey.com", "tutanota.com",
    }
)  # fmt: skip

_COMPANY_SUFFIXES = re.compile(
    r"\b(incorporated|inc|corporation|corp|company|co|llc|ltd|limited|plc|gmbh|ag|sa|bv|"
    r"holdings?|group)\b\.?"
)


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].strip().lower() if "@" in email else ""


def company_domain_for(email: str) -> str:
    """The company domain an email address reveals; '' for public mail providers."""
    domain = email_domain(email)
    return "" if domain in PUBLIC_MAIL_DOMAINS else domain


def normalise_domain(value: str) -> str:
    """'https://www.Acme.com/about' -> 'acme.com'."""
    value = (value or "").strip().lower()
    value = re.sub(r"^[a-z]+://", "", value).split("/", 1)[0].split(":", 1)[0]
    return value.removeprefix("www.")


def is_public_mail_domain(value: str) -> bool:
    return normalise_domain(value) in PUBLIC_MAIL_DOMAINS


def lead_company_domain(*, company_domain: str, email: str) -> str:
    """The domain a lead's company is known by: the one given (normalised), else
    its email's. A public mail domain counts as none, even when given
    explicitly ("gmail.com" says nothing about where someone works); '' when
    there is none."""
    domain = normalise_domain(company_domain)
    if domain in PUBLIC_MAIL_DOMAINS:
        domain = ""
    return domain or company_domain_for(email)


def validate_account_domain(value: str) -> None:
    """An account's domain names one company: public mail domains are refused."""
    if is_public_mail_domain(value):
        raise ValidationError(
            "%(domain)s is a public mail domain: it is shared by people at every company, "
            "so no account can have it. Leave the domain empty or give the company's own.",
            code="public_mail_domain",
            params={"domain": normalise_domain(value)},
        )


def company_name_key(name: str) -> str:
    """A matching key for company names: 'ACME Corp.' and 'Acme Corporation' agree."""
    key = _COMPANY_SUFFIXES.sub(" ", (name or "").lower())
    return re.sub(r"[^a-z0-9]+", "", key)


class Segment(models.TextChoices):
    ENTERPRISE = "enterprise", "Enterprise"
    MID_MARKET = "mid_market", "Mid-market"
    SMB = "smb", "SMB"

    @classmethod
    def for_employees(cls, employees: int | None) -> str:
        if employees is None:
            return ""
        if employees >= 1000:
            return cls.ENTERPRISE
        if employees >= 200:
            return cls.MID_MARKET
        return cls.SMB


class Channel(models.TextChoices):
    ORGANIC_SEARCH = "organic_search", "Organic search"
    PAID_SEARCH = "paid_search", "Paid search"
    PAID_SOCIAL = "paid_social", "Paid social"
    ORGANIC_SOCIAL = "organic_social", "Organic social"
    EMAIL = "email", "Email"
    WEBINAR = "webinar", "Webinar"
    EVENTS = "events", "Events"
    CONTENT_SYNDICATION = "content_syndication", "Content syndication"
    REFERRAL = "referral", "Referral"
    PARTNER = "partner", "Partner"
    DIRECT = "direct", "Direct"
    OUTBOUND = "outbound", "Sales outbound"

    @classmethod
    def marketing(cls) -> frozenset[str]:
        """Channels marketing runs: a lead whose first touch came through one is
        marketing-sourced. Sales outbound is the one that is not."""
        return frozenset(c.value for c in cls) - {cls.OUTBOUND}


class Team(models.Model):
    """A sales team under a manager, in a region; routing sends leads to teams."""

    name = models.CharField(max_length=100, unique=True)
    region = models.CharField(max_length=100, blank=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="managed_teams",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class TeamMembership(models.Model):
    """A seller's place in a team and how many new leads they can take."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    capacity = models.PositiveSmallIntegerField(
        default=10, help_text="Relative share of new leads routed to this rep (0 takes none)."
    )
    is_away = models.BooleanField(default=False, help_text="Away reps are skipped by routing.")

    class Meta:
        ordering = ["team", "user__username"]

    def __str__(self):
        return f"{self.user} in {self.team}"


class Product(models.Model):
    name = models.CharField(max_length=100, unique=True)
    series = models.CharField(max_length=50, blank=True)
    list_price = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Account(models.Model):
    """A company: the people at it are leads, its deals are opportunities."""

    name = models.CharField(max_length=200)
    name_key = models.CharField(max_length=200, editable=False, db_index=True)
    domain = models.CharField(
        max_length=254,
        blank=True,
        validators=[validate_account_domain],
        help_text="The company's web domain, e.g. acme.com (not a public mail domain).",
    )
    industry = models.CharField(max_length=100, blank=True)
    employees = models.PositiveIntegerField(null=True, blank=True)
    annual_revenue = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, help_text="USD millions."
    )
    country = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    year_established = models.PositiveSmallIntegerField(null=True, blank=True)
    technologies = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    segment = models.CharField(max_length=20, choices=Segment.choices, blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="subsidiaries"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_accounts",
    )
    external_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                "domain", name="account_domain_unique", condition=~models.Q(domain="")
            ),
            models.UniqueConstraint(
                "external_id",
                name="account_external_id_unique",
                condition=~models.Q(external_id=""),
            ),
            # Leads match accounts by domain: an account at gmail.com would
            # collect every gmail user. Changing PUBLIC_MAIL_DOMAINS needs a
            # migration (makemigrations --check in CI says so).
            models.CheckConstraint(
                condition=~models.Q(domain__in=sorted(PUBLIC_MAIL_DOMAINS)),
                name="account_domain_not_public_mail",
                violation_error_message="A public mail domain cannot be an account's domain.",
            ),
        ]
        indexes = [
            models.Index(Lower("name"), name="account_lower_name_idx"),
            models.Index(fields=["segment", "industry"], name="account_segment_idx"),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        self.name_key = company_name_key(self.name)
        self.domain = normalise_domain(self.domain)
        if not self.segment:
            self.segment = Segment.for_employees(self.employees)
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("leads:account_detail", args=[self.pk])


class Campaign(models.Model):
    name = models.CharField(max_length=200, unique=True)
    channel = models.CharField(max_length=30, choices=Channel.choices)
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)
    budget = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    description = models.TextField(blank=True)
    promise = models.TextField(
        blank=True,
        help_text="What the campaign promises buyers; retrospectives check the pitch against it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__isnull=True)
                | models.Q(starts_on__isnull=True)
                | models.Q(ends_on__gte=models.F("starts_on")),
                name="campaign_ends_after_start",
            )
        ]

    def __str__(self):
        return self.name


class CampaignSpend(models.Model):
    """What a campaign cost in one month (for CAC and ROI)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="spend")
    month = models.DateField(help_text="The first day of the month.")
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["campaign", "month"]
        constraints = [
            models.UniqueConstraint("campaign", "month", name="campaign_spend_month_unique"),
            models.CheckConstraint(condition=models.Q(month__day=1), name="spend_month_first_day"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="spend_not_negative"),
        ]

    def __str__(self):
        return f"{self.campaign} {self.month:%Y-%m}: {self.amount}"


class FunnelStage(models.TextChoices):
    TOP = "top", "Top of funnel (awareness)"
    MIDDLE = "middle", "Middle of funnel (consideration)"
    BOTTOM = "bottom", "Bottom of funnel (decision)"


class ContentAsset(models.Model):
    class Kind(models.TextChoices):
        BLOG_POST = "blog_post", "Blog post"
        EBOOK = "ebook", "E-book"
        WHITEPAPER = "whitepaper", "Whitepaper"
        WEBINAR = "webinar", "Webinar"
        CASE_STUDY = "case_study", "Case study"
        DATASHEET = "datasheet", "Datasheet"
        DEMO_VIDEO = "demo_video", "Demo video"
        PRICING_PAGE = "pricing_page", "Pricing page"
        ROI_CALCULATOR = "roi_calculator", "ROI calculator"

    title = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    funnel_stage = models.CharField(max_length=10, choices=FunnelStage.choices)
    url = models.CharField(max_length=500, blank=True)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.SET_NULL, null=True, blank=True, related_name="assets"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title


class LeadStage(models.TextChoices):
    NEW = "new", "New"
    MQL = "mql", "MQL"
    SAL = "sal", "SAL (accepted)"
    SQL = "sql", "SQL (qualified)"
    OPPORTUNITY = "opportunity", "Opportunity"
    CUSTOMER = "customer", "Customer"
    REJECTED = "rejected", "Rejected"
    RECYCLED = "recycled", "Recycled (nurture)"
    DISQUALIFIED = "disqualified", "Disqualified"

    @classmethod
    def open_stages(cls) -> tuple[str, ...]:
        """Stages in which a lead is still worked (scored, routed, timed)."""
        return (cls.NEW, cls.MQL, cls.SAL, cls.SQL, cls.RECYCLED)


class Lead(models.Model):
    """A person marketing captured and sales works."""

    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(max_length=254, unique=True, help_text="Stored lower-case.")
    title = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    company = models.CharField(max_length=200, blank=True)
    # As long as an email address, so any email's domain fits.
    company_domain = models.CharField(max_length=254, blank=True)
    country = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    employees = models.PositiveIntegerField(null=True, blank=True)
    segment = models.CharField(max_length=20, choices=Segment.choices, blank=True)
    account = models.ForeignKey(
        Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="leads"
    )
    # Indexed with the stage (lead_owner_stage_idx); every index costs on each update.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_leads",
        db_index=False,
    )
    stage = models.CharField(max_length=20, choices=LeadStage.choices, default=LeadStage.NEW)
    stage_changed_at = models.DateTimeField(default=timezone.now)
    source_channel = models.CharField(
        max_length=30,
        choices=Channel.choices,
        blank=True,
        help_text="The channel of the first touch.",
    )
    source_campaign = models.ForeignKey(
        Campaign,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sourced_leads",
        db_index=False,  # indexed with the creation time (lead_campaign_idx)
    )
    # Scoring and the SLA clock; the sla app writes these through its services.
    score = models.SmallIntegerField(default=0)
    scored_at = models.DateTimeField(null=True, blank=True)
    sla_version = models.ForeignKey(
        "sla.SlaVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="mqls",
        help_text="The SLA version in force when the lead became an MQL.",
    )
    # Not indexed: leads point only at published versions and their personas,
    # which are never deleted, and re-scoring rewrites these columns often.
    icp_version = models.ForeignKey(
        "sla.IcpVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="mqls",
        db_index=False,
    )
    persona = models.ForeignKey(
        "sla.Persona",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="leads",
        db_index=False,
    )
    is_high_intent = models.BooleanField(default=False)
    mql_at = models.DateTimeField(null=True, blank=True)
    response_due_at = models.DateTimeField(null=True, blank=True)
    first_contact_at = models.DateTimeField(null=True, blank=True)
    response_breached_at = models.DateTimeField(null=True, blank=True)
    external_id = models.CharField(max_length=100, blank=True)
    version = models.PositiveIntegerField(
        default=1, help_text="Bumped on every stage change; guards against lost updates."
    )
    created_at = models.DateTimeField(default=timezone.now)  # indexed by lead_created_keyset_idx
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")), name="lead_email_lowercase"
            ),
            models.CheckConstraint(
                condition=models.Q(score__gte=0) & models.Q(score__lte=100),
                name="lead_score_0_100",
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="lead_created_keyset_idx"),
            models.Index(fields=["-score", "-id"], name="lead_score_keyset_idx"),
            # The "stage changed recently" sort over all stages (lead_board_idx
            # serves it only within the board's stages).
            models.Index(fields=["-stage_changed_at", "-id"], name="lead_changed_keyset_idx"),
            models.Index(fields=["last_name", "first_name", "id"], name="lead_name_keyset_idx"),
            models.Index(fields=["owner", "stage"], name="lead_owner_stage_idx"),
            models.Index(fields=["source_channel", "-created_at"], name="lead_channel_idx"),
            models.Index(fields=["source_campaign", "-created_at"], name="lead_campaign_idx"),
            models.Index(fields=["segment", "-created_at"], name="lead_segment_idx"),
            models.Index(fields=["stage", "-created_at"], name="lead_stage_created_idx"),
            # The handoff board (leads.board_selectors); partial, so updates of
            # leads in other stages do not pay for them. Its columns, newest
            # arrivals first, and every column's count in one index-only scan,
            # also when the board is filtered by source or segment.
            models.Index(
                fields=["stage", "-stage_changed_at", "-id"],
                name="lead_board_idx",
                condition=models.Q(stage__in=["mql", "sal", "sql", "recycled"]),
                include=["source_channel", "segment"],
            ),
            # A seller's or team's columns: walking lead_board_idx for them
            # reads every card of a column they have none in (recycled). The
            # planner knows which owners have leads in which stage from the
            # statistics lead_owner_stage_stats (migration 0011).
            models.Index(
                fields=["owner", "stage", "-stage_changed_at", "-id"],
                name="lead_board_owner_idx",
                condition=models.Q(stage__in=["mql", "sal", "sql", "recycled"]),
            ),
            models.Index(
                fields=["response_due_at"],
                name="lead_open_clock_idx",
                condition=models.Q(
                    first_contact_at__isnull=True,
                    response_breached_at__isnull=True,
                    response_due_at__isnull=False,
                ),
            ),
            # Prefix search ("starts with") on the fields people search by.
            models.Index(
                OpClass(Lower("last_name"), name="text_pattern_ops"),
                name="lead_lower_last_name_idx",
            ),
            models.Index(
                OpClass(Lower("first_name"), name="text_pattern_ops"),
                name="lead_lower_first_name_idx",
            ),
            models.Index(
                OpClass(Lower("company"), name="text_pattern_ops"), name="lead_lower_company_idx"
            ),
            models.Index(
                fields=["email"], name="lead_email_prefix_idx", opclasses=["text_pattern_ops"]
            ),
            models.Index(fields=["company_domain"], name="lead_company_domain_idx"),
        ]

    def __str__(self):
        return self.full_name or self.email

    def save(self, *args, **kwargs):
        self.clean_fields_for_save()
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("leads:lead_detail", args=[self.pk])

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_open(self) -> bool:
        return self.stage in LeadStage.open_stages()

    @property
    def is_marketing_sourced(self) -> bool:
        return self.source_channel in Channel.marketing()

    def clean_fields_for_save(self):
        """Normalisations every write path shares (form, API, import)."""
        self.email = self.email.strip().lower()
        self.company_domain = lead_company_domain(
            company_domain=self.company_domain, email=self.email
        )
        if not self.segment and self.employees is not None:
            self.segment = Segment.for_employees(self.employees)


class TouchpointType(models.TextChoices):
    PAGE_VIEW = "page_view", "Page view"
    CONTENT_DOWNLOAD = "content_download", "Content download"
    FORM_SUBMIT = "form_submit", "Form submitted"
    WEBINAR_REGISTERED = "webinar_registered", "Webinar registration"
    WEBINAR_ATTENDED = "webinar_attended", "Webinar attended"
    EMAIL_OPEN = "email_open", "Email opened"
    EMAIL_CLICK = "email_click", "Email clicked"
    AD_CLICK = "ad_click", "Ad clicked"
    EVENT_ATTENDED = "event_attended", "Event attended"
    CHAT = "chat", "Chat"
    DEMO_REQUEST = "demo_request", "Demo request"
    CONTACT_REQUEST = "contact_request", "Contact request"

    @classmethod
    def hand_raises(cls) -> frozenset[str]:
        return frozenset({cls.DEMO_REQUEST, cls.CONTACT_REQUEST})


class Touchpoint(models.Model):
    """One marketing interaction of a lead: the raw material of scoring and attribution."""

    class Source(models.TextChoices):
        API = "api", "API"
        IMPORT = "import", "Import"
        UI = "ui", "Entered in Accord"
        DEMO = "demo", "Demo data"

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="touchpoints")
    type = models.CharField(max_length=30, choices=TouchpointType.choices)
    occurred_at = models.DateTimeField()
    channel = models.CharField(max_length=30, choices=Channel.choices, blank=True)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.SET_NULL, null=True, blank=True, related_name="touchpoints"
    )
    asset = models.ForeignKey(
        ContentAsset, on_delete=models.SET_NULL, null=True, blank=True, related_name="touchpoints"
    )
    url = models.CharField(max_length=1000, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.UI)
    # Idempotency: an event id is unique per API key (or per import source).
    # No index of its own: every API event has an id, so the unique (api_key,
    # external_id) index below covers the key's rows. A second index on the key
    # alone was the planner's pick whenever statistics underestimated a key's
    # rows (a new key, a burst of events), and then each duplicate check
    # scanned all of the key's events (found by `make bench`: 2,000 events/s
    # instead of 20,000). Deleting a key (rare: keys are revoked) scans.
    api_key = models.ForeignKey(
        "leads.ApiKey",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    external_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                "api_key",
                "external_id",
                name="touchpoint_event_id_per_key_unique",
                condition=~models.Q(external_id=""),
                nulls_distinct=False,
            ),
        ]
        indexes = [
            models.Index(fields=["lead", "-occurred_at"], name="touchpoint_lead_time_idx"),
            models.Index(fields=["campaign", "occurred_at"], name="touchpoint_campaign_idx"),
            models.Index(fields=["occurred_at"], name="touchpoint_time_idx"),
            # The scoring sweep reads recent arrivals.
            models.Index(fields=["created_at"], name="touchpoint_created_idx"),
        ]

    def __str__(self):
        return f"{self.get_type_display()} by {self.lead_id} at {self.occurred_at:%Y-%m-%d %H:%M}"

    @property
    def is_hand_raise(self) -> bool:
        return self.type in TouchpointType.hand_raises()


class Activity(models.Model):
    """Something a seller did: a call, email, meeting or note."""

    class Kind(models.TextChoices):
        CALL = "call", "Call"
        EMAIL = "email", "Email"
        MEETING = "meeting", "Meeting"
        NOTE = "note", "Note"

    CONTACT_KINDS = frozenset({Kind.CALL, Kind.EMAIL, Kind.MEETING})

    kind = models.CharField(max_length=10, choices=Kind.choices)
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, null=True, blank=True, related_name="activities"
    )
    opportunity = models.ForeignKey(
        "leads.Opportunity",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="activities",
    )
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, null=True, blank=True, related_name="activities"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="activities"
    )
    occurred_at = models.DateTimeField()
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name_plural = "activities"
        indexes = [
            models.Index(fields=["lead", "-occurred_at"], name="activity_lead_time_idx"),
            models.Index(fields=["account", "-occurred_at"], name="activity_account_time_idx"),
            models.Index(fields=["opportunity", "-occurred_at"], name="activity_opp_time_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.subject}"


class OpportunityStage(models.TextChoices):
    DISCOVERY = "discovery", "Discovery"
    DEMO = "demo", "Demo"
    PROPOSAL = "proposal", "Proposal"
    NEGOTIATION = "negotiation", "Negotiation"
    WON = "won", "Won"
    LOST = "lost", "Lost"

    @classmethod
    def open_stages(cls) -> tuple[str, ...]:
        return (cls.DISCOVERY, cls.DEMO, cls.PROPOSAL, cls.NEGOTIATION)

    @classmethod
    def closed_stages(cls) -> tuple[str, ...]:
        return (cls.WON, cls.LOST)


class Competitor(models.Model):
    name = models.CharField(max_length=100, unique=True)
    website = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Objection(models.Model):
    """An objection sales hears, from a list marketing can train against."""

    label = models.CharField(max_length=200, unique=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["label"]

    def __str__(self):
        return self.label


class FeedbackReason(models.Model):
    """A reason code for rejecting or disqualifying a lead, or losing a deal."""

    class AppliesTo(models.TextChoices):
        REJECT = "reject", "Rejecting a lead"
        DISQUALIFY = "disqualify", "Disqualifying a lead"
        LOSS = "loss", "Losing a deal"

    code = models.SlugField(max_length=50, unique=True)
    label = models.CharField(max_length=200)
    applies_to = ArrayField(
        models.CharField(max_length=20, choices=AppliesTo.choices),
        default=list,
        help_text="Where this reason can be chosen.",
    )
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "label"]

    def __str__(self):
        return self.label


class Opportunity(models.Model):
    """A deal on an account. When it came from a lead, that lead is its source."""

    name = models.CharField(max_length=200)
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, null=True, blank=True, related_name="opportunities"
    )
    source_lead = models.ForeignKey(
        Lead, on_delete=models.SET_NULL, null=True, blank=True, related_name="opportunities"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_opportunities",
    )
    product = models.ForeignKey(
        Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="opportunities"
    )
    stage = models.CharField(
        max_length=20,
        choices=OpportunityStage.choices,
        default=OpportunityStage.DISCOVERY,
        db_index=True,
    )
    stage_changed_at = models.DateTimeField(default=timezone.now)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    expected_close_on = models.DateField(null=True, blank=True)
    closed_on = models.DateField(null=True, blank=True)
    loss_reason = models.ForeignKey(
        FeedbackReason, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    loss_note = models.TextField(blank=True)
    competitor = models.ForeignKey(
        Competitor, on_delete=models.SET_NULL, null=True, blank=True, related_name="opportunities"
    )
    source_channel = models.CharField(max_length=30, choices=Channel.choices, blank=True)
    is_marketing_sourced = models.BooleanField(default=False)
    external_id = models.CharField(max_length=100, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "opportunities"
        constraints = [
            models.UniqueConstraint(
                "external_id",
                name="opportunity_external_id_unique",
                condition=~models.Q(external_id=""),
            ),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="opp_amount_not_neg"),
            models.CheckConstraint(
                condition=~models.Q(stage__in=["won", "lost"]) | models.Q(closed_on__isnull=False),
                name="opp_closed_has_close_date",
            ),
        ]
        indexes = [
            models.Index(fields=["stage", "-created_at"], name="opp_stage_created_idx"),
            models.Index(fields=["owner", "stage"], name="opp_owner_stage_idx"),
            models.Index(fields=["account", "stage"], name="opp_account_stage_idx"),
            models.Index(fields=["closed_on"], name="opp_closed_on_idx"),
            # The deal board's columns, newest arrivals first.
            models.Index(fields=["stage", "-stage_changed_at", "-id"], name="opp_board_idx"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("leads:opportunity_detail", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.stage in OpportunityStage.open_stages()


class LeadStageChange(models.Model):
    """One stage change of a lead: who, when, from, to and why."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.CharField(max_length=20, choices=LeadStage.choices, blank=True)
    to_stage = models.CharField(max_length=20, choices=LeadStage.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.ForeignKey(
        FeedbackReason, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "-changed_at"], name="lead_change_lead_idx"),
            models.Index(fields=["to_stage", "changed_at"], name="lead_change_stage_time_idx"),
        ]

    def __str__(self):
        return f"{self.lead_id}: {self.from_stage or '∅'} → {self.to_stage}"


class OpportunityStageChange(models.Model):
    opportunity = models.ForeignKey(
        Opportunity, on_delete=models.CASCADE, related_name="stage_changes"
    )
    from_stage = models.CharField(max_length=20, choices=OpportunityStage.choices, blank=True)
    to_stage = models.CharField(max_length=20, choices=OpportunityStage.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["opportunity", "-changed_at"], name="opp_change_opp_idx"),
            models.Index(fields=["to_stage", "changed_at"], name="opp_change_stage_time_idx"),
        ]

    def __str__(self):
        return f"{self.opportunity_id}: {self.from_stage or '∅'} → {self.to_stage}"


class LeadFeedback(models.Model):
    """What sales tells marketing about a lead: the verdict, why, and what they heard."""

    class Verdict(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        DISQUALIFIED = "disqualified", "Disqualified"
        NOTE = "note", "Note"

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="feedback")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    reason = models.ForeignKey(
        FeedbackReason, on_delete=models.PROTECT, null=True, blank=True, related_name="feedback"
    )
    note = models.TextField(blank=True)
    objections = models.ManyToManyField(Objection, blank=True, related_name="feedback")
    competitor = models.ForeignKey(
        Competitor, on_delete=models.SET_NULL, null=True, blank=True, related_name="feedback"
    )
    # Copied from the lead when given, so marketing's aggregates need no joins
    # through a lead that may since have changed.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.SET_NULL, null=True, blank=True, related_name="feedback"
    )
    channel = models.CharField(max_length=30, choices=Channel.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "lead feedback"
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(verdict__in=["rejected", "disqualified"])
                | models.Q(reason__isnull=False),
                name="feedback_rejection_has_reason",
            )
        ]
        indexes = [
            models.Index(fields=["lead", "-created_at"], name="feedback_lead_idx"),
            models.Index(fields=["created_at", "verdict"], name="feedback_time_verdict_idx"),
        ]

    def __str__(self):
        return f"{self.get_verdict_display()} on lead {self.lead_id}"


class ApiKey(models.Model):
    """A bearer key for the ingestion API. Only a hash of the key is stored."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    rate_limit_per_minute = models.PositiveIntegerField(
        default=1200, help_text="Requests allowed per minute before 429 Too Many Requests."
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_key(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiKeyUsage(models.Model):
    """Requests made with a key in one minute: the rate limiter's counter."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint("api_key", "window_start", name="api_usage_window_unique")
        ]

    def __str__(self):
        return f"{self.api_key_id} at {self.window_start:%H:%M}: {self.requests}"


class ImportJob(models.Model):
    """A CSV upload: its column mapping, dry run, background run and outcome."""

    class Kind(models.TextChoices):
        ACCOUNTS = "accounts", "Accounts"
        LEADS = "leads", "Leads"
        OPPORTUNITIES = "opportunities", "Opportunities"
        TOUCHPOINTS = "touchpoints", "Touchpoints"

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded: map the columns"
        PREVIEWED = "previewed", "Dry run done: ready to import"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UPLOADED)
    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64, db_index=True)
    headers = models.JSONField(default=list)
    mapping = models.JSONField(default=dict, help_text="Accord field -> CSV column.")
    options = models.JSONField(
        default=dict, blank=True, help_text="Import options (see leads.importing.ImportOptions)."
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    notice_count = models.PositiveIntegerField(
        default=0, help_text="Rows that create an account looking like another (all of them)."
    )
    notices = models.JSONField(
        default=list,
        blank=True,
        help_text="The first of those rows (leads.importing.NOTICES_KEPT), as RowNotice JSON.",
    )
    failure = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_kind_display()} import {self.original_name}"

    def get_absolute_url(self):
        return reverse("leads:import_detail", args=[self.pk])

    @property
    def progress_percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == self.Status.DONE else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))


class ImportRowError(models.Model):
    """A row an import could not take, with its values and reasons."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row_number = models.PositiveIntegerField(help_text="1 is the first row after the header.")
    values = models.JSONField(default=dict)
    errors = models.JSONField(default=dict, help_text="Field -> list of messages.")

    class Meta:
        ordering = ["job", "row_number"]
        constraints = [models.UniqueConstraint("job", "row_number", name="import_row_error_unique")]

    def __str__(self):
        return f"row {self.row_number} of import {self.job_id}"

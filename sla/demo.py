"""The demo's agreement: an ICP with five personas, SLA v1 superseded by v2
(with a changelog that says why), routing rules onto the sample's teams, and
every lead scored under the versions in force. Idempotent."""

from datetime import time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from leads.models import Lead, LeadStage, Team
from sla.models import (
    BehaviourCriterion,
    EngagementGroup,
    EngagementRule,
    FitRule,
    IcpVersion,
    Persona,
    RoutingRule,
    RoutingSettings,
    SlaVersion,
    VersionStatus,
)
from sla.scoring import CHUNK_SIZE, leads_score

ENGAGEMENT_GROUPS = (("Web visits", 20), ("Email", 10), ("Content", 30), ("Events", 25),
                     ("Hand-raise", 40))  # fmt: skip
ENGAGEMENT_RULES = (
    ("page_view", "", 1, "Web visits"),
    ("page_view", "bottom", 4, "Web visits"),
    ("ad_click", "", 1, "Web visits"),
    ("email_open", "", 1, "Email"),
    ("email_click", "", 3, "Email"),
    ("content_download", "", 6, "Content"),
    ("content_download", "middle", 8, "Content"),
    ("content_download", "bottom", 12, "Content"),
    ("form_submit", "", 6, "Content"),
    ("webinar_registered", "", 5, "Events"),
    ("webinar_attended", "", 12, "Events"),
    ("event_attended", "", 12, "Events"),
    ("chat", "", 8, "Hand-raise"),
    ("demo_request", "", 35, "Hand-raise"),
    ("contact_request", "", 30, "Hand-raise"),
)

PERSONAS = (
    {
        "name": "IT leader", "buying_role": "economic_buyer",
        "title_keywords": ["chief information officer", "cio", "vp of it", "it director"],
        "summary": "Owns the hardware budget and the refresh cycle for the whole company.",
        "pain_points": "Fleet costs rise every year; refresh projects disrupt staff; security "
                       "audits flag unmanaged devices.",
        "value_propositions": "Predictable cost per seat over five years; rollouts without "
                              "downtime; every device managed from day one.",
        "proof_points": "Codehow cut refresh costs 30%; Rangreen rolled out 2,000 seats in six weeks.",
        "objections": "“We have a framework agreement with our current vendor.” Show the "
                      "five-year TCO next to the framework price, not the list price.",
    },
    {
        "name": "Procurement lead", "buying_role": "economic_buyer",
        "title_keywords": ["procurement", "purchasing", "cfo"],
        "summary": "Runs the tender, compares vendors, signs the contract.",
        "pain_points": "Vendors quote list prices that change at renewal; support costs hide in "
                       "the small print.",
        "value_propositions": "Price locked for the contract term; support included per seat.",
        "proof_points": "Analyst report: lowest five-year TCO in our category.",
        "objections": "“Too expensive.” Compare cost per seat per year including support.",
    },
    {
        "name": "IT manager", "buying_role": "champion",
        "title_keywords": ["it manager", "workplace technology", "operations manager"],
        "summary": "Lives with the fleet every day; wants fewer tickets and happier staff.",
        "pain_points": "Too many device models to support; slow replacements when a laptop fails.",
        "value_propositions": "Two series (GTX, MG) cover every role; next-day replacement.",
        "proof_points": "Customers report 40% fewer hardware tickets in the first year.",
        "objections": "“No time to evaluate now.” Offer the 30-day pilot kit.",
    },
    {
        "name": "Systems administrator", "buying_role": "technical_evaluator",
        "title_keywords": ["systems administrator", "sysadmin", "engineer", "architect"],
        "summary": "Tests images, drivers, management tooling and security features.",
        "pain_points": "Driver issues after OS updates; imaging that breaks on new models.",
        "value_propositions": "One image per series; drivers certified for two OS releases ahead.",
        "proof_points": "Security whitepaper; management tool integrations list.",
        "objections": "“Missing integration.” Check the integrations list before the demo.",
    },
    {
        "name": "Front-line user", "buying_role": "end_user",
        "title_keywords": ["help desk", "technician", "analyst", "coordinator"],
        "summary": "Uses the device all day; influences the pilot's verdict.",
        "pain_points": "Heavy laptops, short battery life, slow start-up.",
        "value_propositions": "MG Special: light, all-day battery.",
        "proof_points": "Pilot satisfaction scores from the case studies.",
        "objections": "“Happy with the current process.” Let them try the pilot device.",
    },
)  # fmt: skip

FIT_RULES = (
    ("industry", ["software", "technology", "telecommunications", "finance"], None, None, 12),
    ("industry", ["medical", "retail", "services"], None, None, 6),
    ("segment", ["enterprise"], None, None, 10),
    ("segment", ["mid_market"], None, None, 5),
    ("employees", [], Decimal(1000), None, 8),
    ("revenue", [], Decimal(500), None, 5),
    ("region", ["North America"], None, None, 5),
)

V1_CHANGELOG = (
    "First written agreement between marketing and sales. A lead is an MQL at 70 points; "
    "sales responds to hand-raisers within 4 business hours and to other MQLs within 48."
)
V2_CHANGELOG = (
    "Why v2: in the last quarter under v1, sales rejected a third of MQLs as “no timing” or "
    "“not an ICP fit” (see Sales feedback), while win/loss reviews showed that deals we "
    "answered within the hour were won far more often. So v2 (1) lowers the threshold to 60 "
    "but also asks for buying behaviour (pricing page 3+ times in 7 days, or 2+ bottom-funnel "
    "assets in 30 days), (2) answers hand-raisers within 1 business hour and others within "
    "24, with the manager told at a breach and the lead reassigned 8 business hours later, "
    "and (3) commits marketing to 180 MQLs a month and sales to accept at least 70%."
)


def _sla(number, *, title, changelog, published_at, superseded_at, **fields) -> SlaVersion:
    version = SlaVersion.objects.filter(number=number).first()
    if version is not None:
        return version
    version = SlaVersion.objects.create(
        number=number, title=title, changelog=changelog, working_days=[0, 1, 2, 3, 4],
        day_starts=time(9), day_ends=time(17), calendar_time_zone="America/Chicago", **fields,
    )  # fmt: skip
    groups = {
        name: EngagementGroup.objects.create(version=version, name=name, cap=cap)
        for name, cap in ENGAGEMENT_GROUPS
    }
    EngagementRule.objects.bulk_create(
        EngagementRule(version=version, touchpoint_type=t, asset_stage=s, points=p, group=groups[g])
        for t, s, p, g in ENGAGEMENT_RULES
    )
    if number >= 2:
        BehaviourCriterion.objects.create(
            version=version, label="Pricing page 3+ times in 7 days",
            touchpoint_types=["page_view"], asset_kind="pricing_page", min_count=3, within_days=7,
        )  # fmt: skip
        BehaviourCriterion.objects.create(
            version=version, label="2+ bottom-funnel assets in 30 days",
            touchpoint_types=["content_download", "page_view"], asset_stage="bottom",
            min_count=2, within_days=30,
        )  # fmt: skip
    status = VersionStatus.SUPERSEDED if superseded_at else VersionStatus.PUBLISHED
    SlaVersion.objects.filter(pk=version.pk).update(
        status=status, published_at=published_at, superseded_at=superseded_at,
        published_by=get_user_model().objects.filter(username="revops").first(),
    )  # fmt: skip
    version.refresh_from_db()
    return version


def _icp(published_at) -> IcpVersion:
    version = IcpVersion.objects.filter(number=1).first()
    if version is not None:
        return version
    version = IcpVersion.objects.create(
        number=1,
        title="Mid-market and enterprise IT buyers",
        max_fit_points=40,
        changelog="First ideal customer profile, drawn from two years of won deals: software, "
        "technology, telecom and finance companies above 200 employees fit best.",
    )
    for attribute, values, low, high, points in FIT_RULES:
        FitRule.objects.create(
            version=version, attribute=attribute, values=values, min_value=low, max_value=high,
            points=points,
        )  # fmt: skip
    for persona in PERSONAS:
        Persona.objects.create(version=version, **persona)
    IcpVersion.objects.filter(pk=version.pk).update(
        status=VersionStatus.PUBLISHED, published_at=published_at,
        published_by=get_user_model().objects.filter(username="revops").first(),
    )  # fmt: skip
    version.refresh_from_db()
    return version


ROUTING = (
    # name, criteria, team name prefix
    ("Enterprise accounts", {"segments": ["enterprise"]}, "Central"),
    ("EMEA and APAC", {"regions": ["EMEA", "APAC"]}, "East: Rocco"),
    ("Mid-market", {"segments": ["mid_market"]}, "East: Cara"),
    ("Latin America", {"regions": ["Latin America"]}, "West: Summer"),
    ("Everyone else", {}, "West: Celia"),
)


def _routing() -> None:
    if RoutingRule.objects.exists():
        return
    for position, (name, criteria, team_prefix) in enumerate(ROUTING, start=1):
        team = Team.objects.filter(name__startswith=team_prefix).first()
        if team is not None:
            RoutingRule.objects.create(position=position, name=name, team=team, **criteria)
    RoutingSettings.objects.get_or_create(
        defaults={"default_owner": get_user_model().objects.filter(username="manager").first()}
    )


def agreement_versions_create(now) -> tuple[IcpVersion, SlaVersion, SlaVersion]:
    """The demo's ICP v1, SLA v1 (superseded 120 days before `now`) and SLA v2
    (in force), and the routing rules. Idempotent: existing versions stay.
    Also seeds the benchmark data set (scripts/bench_data.py)."""
    with transaction.atomic():
        icp = _icp(now - timedelta(days=420))
        v1 = _sla(
            1, title="First agreement", changelog=V1_CHANGELOG,
            published_at=now - timedelta(days=420), superseded_at=now - timedelta(days=120),
            mql_threshold=70, response_hours_high_intent=Decimal(4),
            response_hours_standard=Decimal(48), mql_commitment_per_month=150,
            min_acceptance_rate=60, reassign_after_hours=None,
        )  # fmt: skip
        v2 = _sla(
            2, title="Faster response, behaviour-based qualification", changelog=V2_CHANGELOG,
            published_at=now - timedelta(days=120), superseded_at=None,
            mql_threshold=60, response_hours_high_intent=Decimal(1),
            response_hours_standard=Decimal(24), mql_commitment_per_month=180,
            min_acceptance_rate=70, reassign_after_hours=Decimal(8), based_on=v1,
        )  # fmt: skip
        _routing()
    return icp, v1, v2


def agreement_load(*, stdout=None) -> None:
    """Seed the agreement, routing, and score every lead under it."""
    now = timezone.now()
    with transaction.atomic():
        icp, v1, v2 = agreement_versions_create(now)
        # Leads that reached MQL were qualified under the SLA in force then.
        Lead.objects.filter(mql_at__isnull=False, sla_version__isnull=True).filter(
            mql_at__lt=v2.published_at
        ).update(sla_version=v1, icp_version=icp)
        Lead.objects.filter(mql_at__isnull=False, sla_version__isnull=True).update(
            sla_version=v2, icp_version=icp
        )
    unscored = list(
        Lead.objects.filter(scored_at__isnull=True).order_by("pk").values_list("pk", flat=True)
    )
    for start in range(0, len(unscored), CHUNK_SIZE):
        # Scores only: the demo's leads already carry their history, and
        # qualifying hundreds at once would flood the reps' notifications.
        leads_score(unscored[start : start + CHUNK_SIZE], qualify=False)
    if stdout:
        open_count = Lead.objects.filter(stage__in=LeadStage.open_stages()).count()
        stdout.write(
            f"  agreement: ICP v1 with {icp.personas.count()} personas, SLA v1 superseded by "
            f"v2; {len(unscored)} leads scored ({open_count} open)"
        )

"""Small factories for tests: plain functions with sensible defaults."""

import itertools
from decimal import Decimal

from django.utils import timezone

from leads.models import (
    Account,
    Campaign,
    Channel,
    Competitor,
    ContentAsset,
    FeedbackReason,
    FunnelStage,
    Lead,
    LeadStage,
    Opportunity,
    OpportunityStage,
    Team,
    TeamMembership,
    Touchpoint,
    TouchpointType,
)

_sequence = itertools.count(1)


def make_account(**fields) -> Account:
    n = next(_sequence)
    fields.setdefault("name", f"Company {n}")
    fields.setdefault("domain", f"company{n}.example")
    fields.setdefault("employees", 500)
    fields.setdefault("industry", "software")
    account = Account(**fields)
    account.save()
    return account


def make_campaign(**fields) -> Campaign:
    n = next(_sequence)
    fields.setdefault("name", f"Campaign {n}")
    fields.setdefault("channel", Channel.PAID_SEARCH)
    return Campaign.objects.create(**fields)


def make_asset(**fields) -> ContentAsset:
    n = next(_sequence)
    fields.setdefault("title", f"Asset {n}")
    fields.setdefault("kind", ContentAsset.Kind.WHITEPAPER)
    fields.setdefault("funnel_stage", FunnelStage.MIDDLE)
    return ContentAsset.objects.create(**fields)


def make_lead(**fields) -> Lead:
    n = next(_sequence)
    fields.setdefault("first_name", f"First{n}")
    fields.setdefault("last_name", f"Last{n}")
    fields.setdefault("email", f"person{n}@company{n}.example")
    fields.setdefault("company", f"Company {n}")
    fields.setdefault("stage", LeadStage.NEW)
    fields.setdefault("source_channel", Channel.PAID_SEARCH)
    lead = Lead(**fields)
    lead.save()
    return lead


def make_touchpoint(lead, **fields) -> Touchpoint:
    fields.setdefault("type", TouchpointType.PAGE_VIEW)
    fields.setdefault("occurred_at", timezone.now())
    fields.setdefault("channel", lead.source_channel)
    return Touchpoint.objects.create(lead=lead, **fields)


def make_opportunity(**fields) -> Opportunity:
    n = next(_sequence)
    fields.setdefault("name", f"Deal {n}")
    fields.setdefault("stage", OpportunityStage.DISCOVERY)
    fields.setdefault("amount", Decimal("10000"))
    if fields["stage"] in OpportunityStage.closed_stages():
        fields.setdefault("closed_on", timezone.localdate())
    return Opportunity.objects.create(**fields)


def make_team(name="Team East", manager=None, members=(), region="East") -> Team:
    team = Team.objects.create(name=name, manager=manager, region=region)
    for member in members:
        TeamMembership.objects.create(user=member, team=team)
    return team


def reason(code: str) -> FeedbackReason:
    return FeedbackReason.objects.get(code=code)


def make_competitor(name="Rivalsoft") -> Competitor:
    return Competitor.objects.get_or_create(name=name)[0]

"""Routing: which seller gets a newly qualified lead.

Ordered rules, first match wins, choose a team; inside the team, a round
robin weighted by capacity picks the available seller with the fewest leads
per unit of capacity (ties: the one who waited longest), skipping inactive
and away reps. With no rule, no available seller, or no team, the default
owner from the routing settings takes the lead.
"""

from datetime import UTC, datetime

from django.db.models import F
from django.utils import timezone

from leads.models import Lead, TeamMembership
from sla.models import RoutingCounter, RoutingRule, RoutingSettings


def rule_matches(rule: RoutingRule, lead: Lead) -> bool:
    account = lead.account
    segment = lead.segment or (account.segment if account else "")
    region = (lead.region or (account.region if account else "")).lower()
    country = (lead.country or (account.country if account else "")).lower()
    industry = (lead.industry or (account.industry if account else "")).lower()
    employees = lead.employees if lead.employees is not None else (
        account.employees if account else None
    )  # fmt: skip
    if rule.segments and segment not in rule.segments:
        return False
    if rule.regions and region not in {r.lower() for r in rule.regions}:
        return False
    if rule.countries and country not in {c.lower() for c in rule.countries}:
        return False
    if rule.industries and industry not in {i.lower() for i in rule.industries}:
        return False
    if rule.min_employees is not None and (employees is None or employees < rule.min_employees):
        return False
    return not (
        rule.max_employees is not None and (employees is None or employees > rule.max_employees)
    )


def team_for(lead: Lead, rules=None):
    """The team of the first active rule that matches, or None."""
    rules = rules if rules is not None else RoutingRule.objects.filter(is_active=True)
    for rule in rules:
        if rule_matches(rule, lead):
            return rule.team
    return None


def seller_pick(team, *, exclude_user_ids=()):
    """The next seller in a team by weighted round robin, or None. Must run
    in a transaction: it locks the team's counters so concurrent routings
    take turns."""
    memberships = list(
        TeamMembership.objects.select_related("user")
        .filter(team=team, is_away=False, capacity__gt=0, user__is_active=True)
        .exclude(user_id__in=exclude_user_ids)
        .order_by("user_id")
    )
    if not memberships:
        return None
    for membership in memberships:
        RoutingCounter.objects.get_or_create(user_id=membership.user_id)
    counters = {
        c.user_id: c
        for c in RoutingCounter.objects.select_for_update()
        .filter(user_id__in=[m.user_id for m in memberships])
        .order_by("user_id")
    }
    never = datetime.min.replace(tzinfo=UTC)

    def load(membership):
        counter = counters[membership.user_id]
        return (
            counter.assigned / membership.capacity,
            counter.last_assigned_at or never,
            membership.user_id,
        )

    chosen = min(memberships, key=load)
    RoutingCounter.objects.filter(pk=counters[chosen.user_id].pk).update(
        assigned=F("assigned") + 1, last_assigned_at=timezone.now()
    )
    return chosen.user


def owner_for(lead: Lead, *, exclude_user_ids=()):
    """Who should own a newly qualified lead (see the module docstring)."""
    team = team_for(lead)
    owner = seller_pick(team, exclude_user_ids=exclude_user_ids) if team else None
    if owner is None:
        settings_row = RoutingSettings.objects.select_related("default_owner").first()
        owner = settings_row.default_owner if settings_row else None
        if owner is not None and owner.pk in exclude_user_ids:
            owner = None
    return owner

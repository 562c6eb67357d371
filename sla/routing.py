"""Routing: which seller gets a newly qualified lead.

Ordered rules, first match wins, choose a team; inside the team, a round
robin weighted by capacity picks the available seller with the fewest leads
per unit of capacity (ties: the one who waited longest), skipping inactive
and away reps. With no rule, no available seller, or no team, the default
owner from the routing settings takes the lead.
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

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


def owners_for(leads, *, exclude_user_ids=(), now=None) -> dict[int, object]:
    """{lead id: owner (a user, or None)} for newly qualified leads, by the
    rules, the weighted round robin and the default owner (see the module
    docstring). Must run in a transaction: it locks the counters of the
    sellers involved, so concurrent routings take turns; the counters are
    written back in one statement."""
    from django.contrib.auth import get_user_model

    now = now or timezone.now()
    rules = list(RoutingRule.objects.filter(is_active=True).select_related("team"))
    team_of = {lead.pk: team_for(lead, rules) for lead in leads}
    team_ids = {team.pk for team in team_of.values() if team is not None}
    memberships = defaultdict(list)
    for membership in (
        TeamMembership.objects.filter(
            team_id__in=team_ids, is_away=False, capacity__gt=0, user__is_active=True
        )
        .exclude(user_id__in=exclude_user_ids)
        .order_by("user_id")
    ):
        memberships[membership.team_id].append(membership)
    user_ids = sorted({m.user_id for members in memberships.values() for m in members})
    RoutingCounter.objects.bulk_create(
        [RoutingCounter(user_id=pk) for pk in user_ids], ignore_conflicts=True
    )
    counters = {
        c.user_id: c
        for c in RoutingCounter.objects.select_for_update()
        .filter(user_id__in=user_ids)
        .order_by("user_id")
    }
    never = datetime.min.replace(tzinfo=UTC)
    users = get_user_model().objects.in_bulk(user_ids)
    settings_row = RoutingSettings.objects.select_related("default_owner").first()
    default_owner = settings_row.default_owner if settings_row else None
    if default_owner is not None and default_owner.pk in exclude_user_ids:
        default_owner = None
    owners = {}
    tick = timedelta(0)
    for lead in sorted(leads, key=lambda lead: lead.pk):
        team = team_of[lead.pk]
        members = memberships.get(team.pk, []) if team else []
        if not members:
            owners[lead.pk] = default_owner
            continue
        chosen = min(
            members,
            key=lambda m: (
                counters[m.user_id].assigned / m.capacity,
                counters[m.user_id].last_assigned_at or never,
                m.user_id,
            ),
        )
        counter = counters[chosen.user_id]
        counter.assigned += 1
        tick += timedelta(microseconds=1)  # keeps the turn order within one batch
        counter.last_assigned_at = now + tick
        owners[lead.pk] = users[chosen.user_id]
    changed = [c for c in counters.values() if c.last_assigned_at and c.last_assigned_at > now]
    RoutingCounter.objects.bulk_update(changed, ["assigned", "last_assigned_at"])
    return owners


def owner_for(lead: Lead, *, exclude_user_ids=()):
    """Who should own one newly qualified lead."""
    return owners_for([lead], exclude_user_ids=exclude_user_ids)[lead.pk]

"""Routing: which seller gets a newly qualified lead.

Ordered rules, first match wins, choose a team; inside the team, a round
robin weighted by capacity picks the available seller with the fewest leads
per unit of capacity (ties: the one who waited longest), skipping inactive
and away reps. With no rule, no available seller, or no team, the default
owner from the routing settings takes the lead.

The round robin counts turns, not lifetime totals: a seller who was away
(or is new to the team) rejoins at the team's level and takes their share
from then on, instead of every lead until their count catches up with
colleagues who kept working (see `_rejoin_level`).
"""

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from django.utils import timezone

from leads.models import Lead, TeamMembership
from sla.models import RoutingCounter, RoutingRotation, RoutingRule, RoutingSettings


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
    docstring). Must run in a transaction: it locks the rotations of the
    teams and the counters of the sellers involved (in that order, by id),
    so concurrent routings take turns; each kind of row is written back in
    one statement."""
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
    staffed = sorted(memberships)
    RoutingRotation.objects.bulk_create(
        [RoutingRotation(team_id=pk) for pk in staffed], ignore_conflicts=True
    )
    rotations = {
        r.team_id: r
        for r in RoutingRotation.objects.select_for_update().filter(team_id__in=staffed)
        .order_by("team_id")
    }  # fmt: skip
    levels_before = {pk: rotation.level for pk, rotation in rotations.items()}
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
    changed = set()
    for team_id, members in memberships.items():
        changed |= _rejoin_level(members, counters, rotations[team_id].level)
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
                Fraction(counters[m.user_id].assigned, m.capacity),
                counters[m.user_id].last_assigned_at or never,
                m.user_id,
            ),
        )
        counter, rotation = counters[chosen.user_id], rotations[team.pk]
        rotation.level = max(rotation.level, counter.assigned / chosen.capacity)
        counter.assigned += 1
        tick += timedelta(microseconds=1)  # keeps the turn order within one batch
        counter.last_assigned_at = now + tick
        changed.add(chosen.user_id)
        owners[lead.pk] = users[chosen.user_id]
    RoutingCounter.objects.bulk_update(
        [counters[pk] for pk in sorted(changed)], ["assigned", "last_assigned_at"]
    )
    RoutingRotation.objects.bulk_update(
        [r for pk, r in rotations.items() if r.level != levels_before[pk]], ["level"]
    )
    return owners


def _rejoin_level(members, counters, level: float) -> set[int]:
    """Keep each available seller within one turn of the team's level: one
    below it (back from away, new, re-activated, given more capacity) is
    lifted to it and so is next in turn, but gets no backlog of missed
    leads; one above it (moved from a busier team, capacity cut) comes down
    to one turn ahead, instead of waiting for the team to catch up. Sellers
    who were there all along are already inside the bounds (the level is
    the lowest ratio at the last turn, and a turn adds one lead). Returns
    the user ids of the counters it changed."""
    changed = set()
    for member in members:
        counter = counters[member.user_id]
        # The epsilon absorbs float error in a level that is an exact ratio.
        floor = math.floor(level * member.capacity + 1e-9)
        bounded = min(max(counter.assigned, floor), floor + 1)
        if bounded != counter.assigned:
            counter.assigned = bounded
            changed.add(member.user_id)
    return changed


def owner_for(lead: Lead, *, exclude_user_ids=()):
    """Who should own one newly qualified lead."""
    return owners_for([lead], exclude_user_ids=exclude_user_ids)[lead.pk]

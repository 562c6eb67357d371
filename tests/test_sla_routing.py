"""Routing: ordered rules (first match wins) on each criterion, the weighted
round robin inside a team (capacity, inactive and away reps, reps who come
back or join), the default owner, concurrent routings, and the rule's
employee band validated in the model, the admin and the database."""

import threading
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from leads.models import TeamMembership
from sla import routing
from sla.models import RoutingCounter, RoutingRotation, RoutingRule, RoutingSettings
from tests.factories import make_account, make_lead, make_team


@pytest.fixture
def fallback(make_user):
    """The default owner of the routing settings."""
    user = make_user("fallback", "Sales manager")
    RoutingSettings.objects.create(default_owner=user)
    return user


def team_of(make_user, name, *usernames, capacity=10):
    members = [make_user(username, "Sales rep") for username in usernames]
    team = make_team(name=name, manager=make_user(f"{name.lower()}-boss", "Sales manager"),
                     members=members)  # fmt: skip
    TeamMembership.objects.filter(team=team).update(capacity=capacity)
    return team, members


def route(n, **lead_fields) -> Counter:
    """Route n new leads one at a time; how many each username got."""
    owners = [routing.owner_for(make_lead(**lead_fields)) for _ in range(n)]
    return Counter(owner.username if owner else None for owner in owners)


# --- Rules -------------------------------------------------------------------------------------


def test_the_first_matching_rule_in_position_order_wins(make_user, fallback):
    enterprise_team, (ena,) = team_of(make_user, "Enterprise", "ena")
    software_team, (sam,) = team_of(make_user, "Software", "sam")
    # Both rules match an enterprise software lead; the earlier position wins,
    # whichever was created first.
    software = RoutingRule.objects.create(
        position=2, name="Software", industries=["software"], team=software_team
    )
    RoutingRule.objects.create(
        position=1, name="Enterprise", segments=["enterprise"], team=enterprise_team
    )
    both = {"segment": "enterprise", "industry": "software"}
    assert routing.owner_for(make_lead(**both)) == ena
    assert routing.owner_for(make_lead(segment="mid_market", industry="software")) == sam
    assert routing.owner_for(make_lead(segment="smb", industry="retail")) == fallback

    RoutingRule.objects.filter(pk=software.pk).update(position=0)
    assert routing.owner_for(make_lead(**both)) == sam

    RoutingRule.objects.filter(pk=software.pk).update(is_active=False)  # skipped
    assert routing.owner_for(make_lead(**both)) == ena


@pytest.mark.parametrize(
    "criteria, matching, not_matching",
    [
        ({"segments": ["enterprise"]}, {"segment": "enterprise"}, {"segment": "smb"}),
        ({"regions": ["EMEA"]}, {"region": "emea"}, {"region": "North America"}),
        ({"countries": ["Germany"]}, {"country": "GERMANY"}, {"country": "France"}),
        ({"industries": ["Software"]}, {"industry": "software"}, {"industry": "retail"}),
        ({"min_employees": 200}, {"employees": 200}, {"employees": 199}),
        ({"max_employees": 1000}, {"employees": 1000}, {"employees": 1001}),
        ({"min_employees": 200, "max_employees": 1000}, {"employees": 500}, {"employees": None}),
        (
            {"segments": ["enterprise"], "regions": ["EMEA"]},
            {"segment": "enterprise", "region": "EMEA"},
            {"segment": "enterprise", "region": "APAC"},  # every criterion must match
        ),
    ],
)  # fmt: skip
def test_each_criterion_matches_or_not(make_user, fallback, criteria, matching, not_matching):
    team, (rep,) = team_of(make_user, "East", "rep")
    RoutingRule.objects.create(position=1, name="The rule", team=team, **criteria)
    assert routing.owner_for(make_lead(**matching)) == rep
    assert routing.owner_for(make_lead(**not_matching)) == fallback


def test_criteria_the_lead_lacks_come_from_its_account(make_user, fallback):
    team, (rep,) = team_of(make_user, "EMEA", "rep")
    RoutingRule.objects.create(
        name="EMEA software", regions=["EMEA"], industries=["software"], min_employees=1000,
        team=team,
    )  # fmt: skip
    account = make_account(region="EMEA", industry="Software", employees=5000)
    assert routing.owner_for(make_lead(account=account)) == rep
    # The lead's own facts come first.
    assert routing.owner_for(make_lead(account=account, region="APAC")) == fallback


# --- The round robin ---------------------------------------------------------------------------


def test_capacity_weights_the_round_robin(make_user, fallback):
    team, (double, single) = team_of(make_user, "East", "double", "single")
    TeamMembership.objects.filter(user=double).update(capacity=2)
    TeamMembership.objects.filter(user=single).update(capacity=1)
    RoutingRule.objects.create(name="All", team=team)
    assert route(30) == {"double": 20, "single": 10}


def test_inactive_and_away_reps_are_skipped(make_user, fallback):
    team, (_, gone, away) = team_of(make_user, "East", "working", "gone", "away")
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    TeamMembership.objects.filter(user=away).update(is_away=True)
    RoutingRule.objects.create(name="All", team=team)
    assert route(6) == {"working": 6}


def test_the_default_owner_takes_what_no_rule_or_rep_can(make_user, fallback):
    team, (away,) = team_of(make_user, "East", "away")
    TeamMembership.objects.filter(user=away).update(is_away=True)
    RoutingRule.objects.create(name="Enterprise", segments=["enterprise"], team=team)
    assert routing.owner_for(make_lead(segment="smb")) == fallback  # no rule matches
    assert routing.owner_for(make_lead(segment="enterprise")) == fallback  # nobody available
    RoutingSettings.objects.update(default_owner=None)
    assert routing.owner_for(make_lead(segment="enterprise")) is None


def test_a_rep_back_from_away_takes_a_fair_share_not_every_lead(make_user, fallback):
    """Routing counts turns: while Bea is away Ada takes them all; when Bea is
    back she is next in turn, then they alternate. Counting lifetime totals,
    Bea would take the next 20 leads while Ada got none."""
    team, (_, bea) = team_of(make_user, "East", "ada", "bea")
    RoutingRule.objects.create(name="All", team=team)
    assert route(2) == {"ada": 1, "bea": 1}
    TeamMembership.objects.filter(user=bea).update(is_away=True)
    assert route(20) == {"ada": 20}
    TeamMembership.objects.filter(user=bea).update(is_away=False)
    owners = [routing.owner_for(make_lead()).username for _ in range(10)]
    assert owners == ["bea", "ada"] * 5


def test_a_new_rep_and_a_reactivated_rep_join_level_with_the_team(make_user, fallback):
    team, (_, bea) = team_of(make_user, "East", "ada", "bea")
    RoutingRule.objects.create(name="All", team=team)
    bea.is_active = False
    bea.save(update_fields=["is_active"])
    assert route(30) == {"ada": 30}
    cy = make_user("cy", "Sales rep")
    TeamMembership.objects.create(user=cy, team=team, capacity=10)
    bea.is_active = True
    bea.save(update_fields=["is_active"])
    assert route(30) == {"ada": 10, "bea": 10, "cy": 10}


def test_a_rep_moved_from_a_busier_team_does_not_wait_for_the_new_team_to_catch_up(
    make_user, fallback
):
    busy, (_, mover) = team_of(make_user, "Busy", "old-hand", "mover")
    quiet, _ = team_of(make_user, "Quiet", "newcomer")
    RoutingRule.objects.create(position=1, name="Busy", segments=["enterprise"], team=busy)
    RoutingRule.objects.create(position=2, name="Quiet", team=quiet)
    assert route(40, segment="enterprise") == {"old-hand": 20, "mover": 20}
    TeamMembership.objects.filter(user=mover).update(team=quiet)
    assert route(10, segment="smb") == {"newcomer": 5, "mover": 5}


def test_one_batch_takes_turns_like_single_routings(make_user, fallback):
    team, (ada, bea) = team_of(make_user, "East", "ada", "bea")
    TeamMembership.objects.filter(user=ada).update(capacity=3)
    TeamMembership.objects.filter(user=bea).update(capacity=1)
    RoutingRule.objects.create(name="All", team=team)
    leads = [make_lead() for _ in range(8)]
    owners = routing.owners_for(leads)
    assert Counter(owner.username for owner in owners.values()) == {"ada": 6, "bea": 2}
    assert RoutingCounter.objects.get(user=ada).assigned == 6
    assert RoutingRotation.objects.get(team=team).level > 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_routings_take_turns(make_user):
    """Two processes routing to one team at once: the row locks serialise
    them, so no turn is lost or given twice."""
    team, _ = team_of(make_user, "East", "ada", "bea")
    RoutingRule.objects.create(name="All", team=team)
    batches = [[make_lead() for _ in range(10)] for _ in range(2)]
    barrier = threading.Barrier(2)
    owners, errors = [], []

    def work(leads):
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                owners.extend(routing.owners_for(leads).values())
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert Counter(owner.username for owner in owners) == {"ada": 10, "bea": 10}
    assert sorted(RoutingCounter.objects.values_list("assigned", flat=True)) == [10, 10]


# --- The rule's employee band ----------------------------------------------------------------


def test_a_rule_with_more_fewest_than_most_employees_is_refused(db):
    team = make_team()
    rule = RoutingRule(name="Mid", team=team, min_employees=1000, max_employees=200)
    with pytest.raises(ValidationError) as refused:
        rule.full_clean()
    assert "below the fewest" in refused.value.message_dict["max_employees"][0]
    RoutingRule(name="Exactly 500", team=team, min_employees=500, max_employees=500).full_clean()
    RoutingRule(name="Open-ended", team=team, min_employees=1000).full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        rule.save()  # the database refuses it too


def test_the_admin_shows_the_employee_band_error(client_for, revops):
    team = make_team()
    response = client_for(revops).post(
        "/admin/sla/routingrule/add/",
        {"position": 1, "name": "Mid", "team": team.pk, "min_employees": 1000,
         "max_employees": 200, "is_active": "on"},
    )  # fmt: skip
    assert response.status_code == 200  # the form again, not a redirect
    assert "below the fewest" in response.content.decode()
    assert not RoutingRule.objects.exists()

"""Scoring, qualification, routing and response clocks."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads import services as lead_services
from leads.models import Lead, LeadStage, TeamMembership
from sla import routing, scoring
from sla.models import (
    Breach,
    Notification,
    RescoreJob,
    RoutingRule,
    RoutingSettings,
    ScoreEvaluation,
    SlaVersion,
)
from sla.services import response_clock_sweep
from tests.factories import make_account, make_asset, make_lead, make_team, make_touchpoint
from tests.sla_factories import make_icp, make_sla

NOW = timezone.now()


@pytest.fixture
def agreement(db):
    return make_sla(), make_icp()


def enterprise_lead(**fields):
    account = make_account(industry="software", employees=5000)
    fields.setdefault("title", "IT Director")
    return make_lead(account=account, employees=5000, segment="enterprise", **fields)


def test_score_is_fit_plus_capped_engagement_with_parts(agreement):
    sla, icp = agreement
    lead = enterprise_lead()
    for _ in range(20):  # 40 raw web points, capped at 30
        make_touchpoint(lead, type="page_view", occurred_at=NOW - timedelta(hours=1))
    make_touchpoint(
        lead, type="content_download", asset=make_asset(funnel_stage="bottom"), occurred_at=NOW
    )
    (evaluation,) = scoring.evaluate([lead.pk], sla=sla, icp=icp, now=NOW)
    assert evaluation.fit == 40  # software 15 + enterprise 15 + 1000+ employees 10
    assert evaluation.engagement == 30 + 20  # web capped; bottom-funnel rule beats the generic
    assert evaluation.total == 90
    labels = [part["label"] for part in evaluation.parts]
    assert "Industry is one of software" in labels
    assert any("capped at 30" in label for label in labels)
    assert evaluation.persona_id == icp.personas.get(name="IT leader").pk


def test_fit_is_capped_at_the_icps_maximum(db):
    sla = make_sla()
    icp = make_icp(max_fit_points=20)
    lead = enterprise_lead()
    (evaluation,) = scoring.evaluate([lead.pk], sla=sla, icp=icp, now=NOW)
    assert evaluation.fit == 20


def test_engagement_decays_by_half_life(db):
    sla = make_sla(decay_half_life_days=10)
    icp = make_icp(fit_rules=[("industry", ["none"], None, None, 1)])
    lead = make_lead()
    make_touchpoint(lead, type="webinar_attended", occurred_at=NOW - timedelta(days=10))
    (evaluation,) = scoring.evaluate([lead.pk], sla=sla, icp=icp, now=NOW)
    assert evaluation.engagement == round(15 / 2)


def test_qualification_needs_threshold_and_behaviour(db):
    sla = make_sla(
        mql_threshold=30,
        criteria=[("Two webinars in 30 days", ["webinar_attended"], 2, 30)],
    )
    icp = make_icp()
    lead = enterprise_lead()
    (evaluation,) = scoring.evaluate([lead.pk], sla=sla, icp=icp, now=NOW)
    assert evaluation.total >= 30 and not evaluation.qualifies
    assert any("Two webinars" in reason for reason in evaluation.reasons)
    make_touchpoint(lead, type="webinar_attended", occurred_at=NOW - timedelta(days=1))
    make_touchpoint(lead, type="webinar_attended", occurred_at=NOW - timedelta(days=2))
    (evaluation,) = scoring.evaluate([lead.pk], sla=sla, icp=icp, now=NOW)
    assert evaluation.qualifies


def test_explicit_criteria_block_qualification(db):
    sla = make_sla(mql_threshold=10, required_seniority="director", required_min_employees=1000)
    icp = make_icp()
    junior = enterprise_lead(title="Help desk technician")
    small = make_lead(title="IT Director", employees=50, segment="smb")
    fine = enterprise_lead(title="Head of IT")
    results = {
        e.lead_id: e
        for e in scoring.evaluate([junior.pk, small.pk, fine.pk], sla=sla, icp=icp, now=NOW)
    }
    assert not results[junior.pk].qualifies
    assert not results[small.pk].qualifies
    assert results[fine.pk].qualifies


@pytest.mark.parametrize(
    "title, rank",
    [("Chief Information Officer", 4), ("CTO", 4), ("VP of IT", 3), ("IT Director", 2),
     ("Head of Procurement", 2), ("IT Manager", 1), ("Systems Administrator", 0), ("", 0)],
)  # fmt: skip
def test_seniority_from_title(title, rank):
    assert scoring.seniority_rank(title) == rank


def test_hand_raise_qualifies_below_threshold_and_is_high_intent(db):
    sla = make_sla(mql_threshold=99)
    icp = make_icp()
    lead = make_lead(title="Analyst")
    make_touchpoint(lead, type="demo_request", occurred_at=NOW)
    (evaluation,) = scoring.evaluate([lead.pk], sla=sla, icp=icp, now=NOW)
    assert evaluation.qualifies and evaluation.high_intent


def test_leads_score_makes_an_mql_stamped_routed_and_timed(db, rep, manager):
    sla, icp = make_sla(response_hours_high_intent=Decimal(1)), make_icp()
    team = make_team(manager=manager, members=[rep])
    RoutingRule.objects.create(name="Everything", team=team)
    lead = enterprise_lead()
    make_touchpoint(lead, type="demo_request", occurred_at=NOW)
    scoring.leads_score([lead.pk], now=NOW)
    lead.refresh_from_db()
    assert lead.stage == LeadStage.MQL
    assert (lead.sla_version, lead.icp_version) == (sla, icp)
    assert lead.owner == rep
    assert lead.is_high_intent
    assert lead.response_due_at == NOW + timedelta(hours=1)  # 24/7 calendar in the factory
    assert lead.score > 0 and lead.persona is not None
    assert rep.notifications.filter(title__startswith="New high-intent MQL").exists()
    assert ScoreEvaluation.objects.filter(lead=lead, sla_version=sla).count() == 1
    scoring.leads_score([lead.pk], now=NOW)  # again: same rows, no second MQL
    assert ScoreEvaluation.objects.filter(lead=lead).count() == 1
    assert lead.stage_changes.filter(to_stage="mql").count() == 1


def test_scoring_query_count_does_not_grow_with_leads(agreement):
    leads = [enterprise_lead() for _ in range(3)]
    for lead in leads:
        make_touchpoint(lead)
    with CaptureQueriesContext(connection) as few:
        scoring.leads_score([lead.pk for lead in leads], qualify=False)
    more = [enterprise_lead() for _ in range(40)]
    for lead in more:
        make_touchpoint(lead)
        make_touchpoint(lead, type="webinar_attended")
    with CaptureQueriesContext(connection) as many:
        scoring.leads_score([lead.pk for lead in leads + more], qualify=False)
    assert len(many) == len(few)


def test_routing_rules_first_match_and_weighted_round_robin(db, make_user):
    east_manager = make_user("em", "Sales manager")
    big, small = make_user("big", "Sales rep"), make_user("small", "Sales rep")
    away = make_user("away", "Sales rep")
    team = make_team(name="Enterprise", manager=east_manager, members=[big, small, away])
    TeamMembership.objects.filter(user=big).update(capacity=20)
    TeamMembership.objects.filter(user=small).update(capacity=10)
    TeamMembership.objects.filter(user=away).update(is_away=True)
    fallback = make_user("fallback", "Sales manager")
    RoutingSettings.objects.create(default_owner=fallback)
    RoutingRule.objects.create(position=1, name="Enterprise", segments=["enterprise"], team=team)
    owners = [routing.owner_for(enterprise_lead()).username for _ in range(30)]
    assert owners.count("big") == 20 and owners.count("small") == 10 and "away" not in owners
    assert routing.owner_for(make_lead(segment="smb", employees=10)) == fallback


def test_first_contact_stops_the_clock_and_the_sweep_breaches_once(db, rep, manager):
    make_team(manager=manager, members=[rep])
    make_sla()
    contacted = make_lead(stage="mql", owner=rep, response_due_at=NOW - timedelta(hours=1))
    lead_services.activity_log(actor=rep, lead=contacted, kind="call", subject="Hi")
    overdue = make_lead(stage="mql", owner=rep, response_due_at=NOW - timedelta(minutes=5))
    waiting = make_lead(stage="mql", owner=rep, response_due_at=NOW + timedelta(hours=1))
    assert response_clock_sweep(now=NOW) == {"breached": 1, "escalated": 0}
    assert response_clock_sweep(now=NOW) == {"breached": 0, "escalated": 0}
    assert Breach.objects.filter(lead=overdue).count() == 1
    assert not Breach.objects.filter(lead__in=[contacted, waiting]).exists()
    assert manager.notifications.filter(title__startswith="SLA breach").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_breach_and_notify_once(make_user):
    make_sla()
    rep = make_user("r1", "Sales rep")
    boss = make_user("b1", "Sales manager")
    make_team(manager=boss, members=[rep])
    leads = [
        make_lead(stage="mql", owner=rep, response_due_at=NOW - timedelta(minutes=i + 1))
        for i in range(10)
    ]
    barrier = threading.Barrier(2)
    results = []

    def sweep():
        barrier.wait()
        try:
            results.append(response_clock_sweep(now=NOW)["breached"])
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 10
    assert Breach.objects.count() == 10
    assert boss.notifications.count() == 10
    assert Lead.objects.filter(pk__in=[x.pk for x in leads], response_breached_at=None).count() == 0


def test_breach_is_reassigned_after_the_escalation_delay(db, make_user):
    make_sla(reassign_after_hours=Decimal(2))
    first, second = make_user("first", "Sales rep"), make_user("second", "Sales rep")
    team = make_team(manager=make_user("boss", "Sales manager"), members=[first, second])
    RoutingRule.objects.create(name="All", team=team)
    from sla import versions

    lead = make_lead(
        stage="mql", owner=first, response_due_at=NOW - timedelta(minutes=1),
        sla_version=versions.sla_in_force(),
    )  # fmt: skip
    response_clock_sweep(now=NOW)
    assert response_clock_sweep(now=NOW + timedelta(hours=1))["escalated"] == 0
    assert response_clock_sweep(now=NOW + timedelta(hours=3))["escalated"] == 1
    lead.refresh_from_db()
    assert lead.owner == second and lead.response_breached_at is None
    assert response_clock_sweep(now=NOW + timedelta(hours=4))["escalated"] == 0


def test_an_escalation_that_finds_nobody_tells_the_manager_and_revops_once(db, make_user):
    """Everyone else is away and there is no default owner: the lead stays
    with its owner, and the people who can act hear of it, once."""
    make_sla(reassign_after_hours=Decimal(2))
    first, away = make_user("first", "Sales rep"), make_user("away", "Sales rep")
    boss, admin = make_user("boss", "Sales manager"), make_user("admin", "RevOps admin")
    team = make_team(manager=boss, members=[first, away])
    TeamMembership.objects.filter(user=away).update(is_away=True)
    RoutingRule.objects.create(name="All", team=team)
    from sla import versions
    from sla.services import breach_escalate

    lead = make_lead(
        stage="mql", owner=first, response_due_at=NOW - timedelta(minutes=1),
        sla_version=versions.sla_in_force(),
    )  # fmt: skip
    response_clock_sweep(now=NOW)
    assert response_clock_sweep(now=NOW + timedelta(hours=3))["escalated"] == 1
    lead.refresh_from_db()
    assert lead.owner == first
    breach = Breach.objects.get(lead=lead)
    assert breach.reassigned_at is not None and breach.reassigned_to is None
    for user in (boss, admin):
        (told,) = user.notifications.filter(title__startswith="Nobody to reassign")
        assert "It stays with" in told.body and "2 more business hours" in told.body
        assert told.url == lead.get_absolute_url()
    assert not first.notifications.filter(title__startswith="Nobody to reassign").exists()
    # Later sweeps, and the escalation run again, tell nobody again.
    assert response_clock_sweep(now=NOW + timedelta(hours=10))["escalated"] == 0
    assert breach_escalate(breach_id=breach.pk, now=NOW + timedelta(hours=11)) is False
    assert Notification.objects.filter(title__startswith="Nobody to reassign").count() == 2


def test_an_escalation_for_a_lead_without_a_manager_tells_revops(db, make_user):
    make_sla(reassign_after_hours=Decimal(1))
    loner, admin = make_user("loner", "Sales rep"), make_user("admin", "RevOps admin")
    lead = make_lead(
        stage="mql", owner=loner, response_due_at=NOW - timedelta(minutes=1),
        sla_version=SlaVersion.objects.get(),
    )  # fmt: skip
    response_clock_sweep(now=NOW)
    assert response_clock_sweep(now=NOW + timedelta(hours=2))["escalated"] == 1
    assert list(
        Notification.objects.filter(title__startswith="Nobody to reassign").values_list(
            "recipient__username", flat=True
        )
    ) == [admin.username]
    lead.refresh_from_db()
    assert lead.owner == loner


def test_leads_without_any_persona_are_scored(db):
    make_sla(), make_icp()
    lead = make_lead(title="Student")  # no persona matches; no touchpoints
    scoring.leads_score([lead.pk], qualify=False)
    lead.refresh_from_db()
    assert lead.scored_at is not None and lead.persona is None


def test_qualifying_many_leads_takes_a_fixed_number_of_queries(db, rep, manager):
    make_sla(), make_icp()
    team = make_team(manager=manager, members=[rep])
    RoutingRule.objects.create(name="All", team=team)

    def hand_raisers(n):
        leads = [make_lead(title="Analyst") for _ in range(n)]
        for lead in leads:
            make_touchpoint(lead, type="demo_request", occurred_at=NOW)
        return [lead.pk for lead in leads]

    few, many = hand_raisers(2), hand_raisers(30)
    with CaptureQueriesContext(connection) as small:
        assert len(scoring.leads_score(few, now=NOW).qualified) == 2
    with CaptureQueriesContext(connection) as large:
        assert len(scoring.leads_score(many, now=NOW).qualified) == 30
    assert len(large) == len(small)
    assert rep.notifications.count() == 32


def _job_run(job, *, chunk_size):
    """Every lane of the job, step by step, as the lane tasks would."""
    for number in range(job.lane_count):
        while scoring.rescore_lane_step(job.pk, number, chunk_size=chunk_size):
            pass
    job.refresh_from_db()


def test_a_rescore_job_scores_every_open_lead_once_whatever_the_gaps(agreement):
    leads = [make_lead() for _ in range(40)]
    # A stretch where only every third lead is open: lanes 1 and 2 meet
    # windows without any lead of theirs.
    closed = [lead for lead in leads[10:30] if lead.pk % 3] + leads[35:]
    Lead.objects.filter(pk__in=[lead.pk for lead in closed]).update(stage=LeadStage.CUSTOMER)
    open_ids = {lead.pk for lead in leads} - {lead.pk for lead in closed}
    job = scoring.rescore_job_create(lanes=3)
    _job_run(job, chunk_size=4)
    assert job.status == RescoreJob.Status.DONE
    assert job.processed == job.total == len(open_ids)
    assert sum(job.lanes.values_list("processed", flat=True)) == len(open_ids)
    evaluated = ScoreEvaluation.objects.filter(sla_version=job.sla_version)
    assert set(evaluated.values_list("lead_id", flat=True)) == open_ids
    assert Lead.objects.filter(pk__in=open_ids, scored_at=None).count() == 0
    # Run again once done: nothing moves.
    assert not scoring.rescore_lane_step(job.pk, 0, chunk_size=4)
    job.refresh_from_db()
    assert job.processed == len(open_ids)


def test_a_rescore_job_rewrites_only_the_leads_whose_score_changes(db):
    make_sla(mql_threshold=99, required_seniority="director"), make_icp()
    steady = enterprise_lead(title="Data “lead” analyst")
    make_touchpoint(steady, type="webinar_attended", occurred_at=NOW - timedelta(days=1))
    moving = enterprise_lead()
    never = make_lead(title="Student")  # no fit, no touchpoints: its score stays 0
    scoring.leads_score([steady.pk, moving.pk], qualify=False, now=NOW - timedelta(minutes=5))
    make_touchpoint(moving, type="demo_request")
    before = dict(Lead.objects.values_list("pk", "scored_at"))
    job = scoring.rescore_job_create()
    _job_run(job, chunk_size=10)
    after = {lead.pk: lead for lead in Lead.objects.all()}
    assert after[steady.pk].scored_at == before[steady.pk]  # left alone
    assert after[moving.pk].scored_at > before[moving.pk]
    assert after[moving.pk].is_high_intent and after[moving.pk].score > steady.score
    assert after[never.pk].scored_at is not None and after[never.pk].score == 0
    # Each lead's evaluation is stored, as the job evaluated it.
    for lead in (steady, moving, never):
        (evaluation,) = scoring.evaluate([lead.pk], sla=job.sla_version, icp=job.icp_version)
        stored = ScoreEvaluation.objects.get(lead=lead, sla_version=job.sla_version)
        assert stored.evaluated_at > before[steady.pk]
        assert stored.total == after[lead.pk].score == evaluation.total
        assert (stored.parts, stored.reasons) == (evaluation.parts, evaluation.reasons)
    (stored,) = ScoreEvaluation.objects.filter(lead=steady)
    assert stored.reasons[0] == "Title “Data “lead” analyst” is below director and above."


def test_a_rescore_step_takes_a_fixed_number_of_queries(db):
    make_sla(mql_threshold=99), make_icp()
    for _ in range(40):
        make_touchpoint(enterprise_lead(), type="webinar_attended")
    job = scoring.rescore_job_create(lanes=1)
    with CaptureQueriesContext(connection) as small:
        assert scoring.rescore_lane_step(job.pk, 0, chunk_size=3)
    with CaptureQueriesContext(connection) as large:
        assert scoring.rescore_lane_step(job.pk, 0, chunk_size=30)
    assert len(large) == len(small)


@pytest.mark.django_db(transaction=True)
def test_a_lane_scoring_its_chunk_holds_up_no_other_lane(monkeypatch):
    """A lane's chunk locks its own row only, not the job's (which every lane
    updates) nor the versions': the lanes score at the same time."""
    from django.db import DatabaseError, transaction

    from sla.models import RescoreLane

    make_sla(), make_icp()
    for _ in range(4):
        make_lead()
    monkeypatch.setattr(scoring, "enqueue_on_commit", lambda *args: None)  # no worker here
    job = scoring.rescore_job_create(lanes=2)
    inside, release = threading.Event(), threading.Event()
    real_leads_score = scoring.leads_score

    def held(ids, **kwargs):
        inside.set()
        release.wait(30)
        return real_leads_score(ids, **kwargs)

    monkeypatch.setattr(scoring, "leads_score", held)

    def lane_step():
        try:
            scoring.rescore_lane_step(job.pk, 0, chunk_size=10)
        finally:
            connection.close()

    thread = threading.Thread(target=lane_step)
    thread.start()
    try:
        assert inside.wait(30)  # lane 0 is scoring, in its transaction
        with transaction.atomic():
            RescoreJob.objects.select_for_update(nowait=True).get(pk=job.pk)
            RescoreLane.objects.select_for_update(nowait=True).get(job=job, number=1)
            SlaVersion.objects.select_for_update(nowait=True).get(pk=job.sla_version_id)
        with pytest.raises(DatabaseError), transaction.atomic():
            RescoreLane.objects.select_for_update(nowait=True).get(job=job, number=0)
    finally:
        release.set()
        thread.join()
    assert RescoreLane.objects.get(job=job, number=0).processed == 2


def test_a_rescore_task_skips_leads_scored_since_its_touchpoints(agreement):
    """A backlog of re-score tasks for the same busy leads scores each lead
    once: a task skips a lead whose scoring began after its touchpoints were
    committed (that score counts them); without `sent_at` (the sweep) every
    lead is scored."""
    from sla.models import ScoreEvaluation
    from sla.tasks import leads_rescore

    busy, quiet = enterprise_lead(), enterprise_lead()
    for lead in (busy, quiet):
        make_touchpoint(lead, type="page_view", occurred_at=NOW)
    sent_at = timezone.now()
    scoring.leads_score([busy.pk], now=sent_at + scoring.SCORED_SINCE_MARGIN * 2)
    busy.refresh_from_db()
    scored_at = busy.scored_at
    assert scoring.leads_scored_since([busy.pk, quiet.pk], sent_at) == {busy.pk}

    leads_rescore([busy.pk, quiet.pk], sent_at=sent_at.isoformat())
    busy.refresh_from_db()
    quiet.refresh_from_db()
    assert busy.scored_at == scored_at and quiet.scored_at is not None
    # A score that began before the touchpoints were in (within the clocks'
    # margin) does not count: the lead is scored again.
    assert scoring.leads_scored_since([quiet.pk], quiet.scored_at) == set()
    leads_rescore([busy.pk])  # the sweep's task: no sent_at, scored again (now)
    busy.refresh_from_db()
    assert busy.scored_at < scored_at
    assert ScoreEvaluation.objects.filter(lead=busy).count() == 1  # one per versions, updated

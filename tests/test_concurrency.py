"""Two people changing the same record at once: exactly one outcome, no lost
update. Each race runs two threads on two database connections, and makes
them overlap for certain: the first keeps its transaction (and the locks it
took) open until PostgreSQL shows the second waiting for them."""

import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction

from config.models import AuditEntry
from leads import board_moves, import_services, services
from leads.importing import ImportOptions
from leads.models import ImportJob, Lead, LeadStage, LeadStageChange, OpportunityStageChange
from tests.factories import make_lead, make_opportunity, make_team, reason
from tests.import_support import csv_bytes, media_root  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("taxonomy")]

BLOCKED_WITHIN_SECONDS = 30  # only a bound on a hung race, never a measurement


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _wait_until_waiting_on_me(other_pid: int, other_done: threading.Event) -> None:
    """Return once the backend `other_pid` waits on a lock this connection
    holds, or the other thread finished (it needed no lock of ours)."""
    me = _backend_pid()
    deadline = time.monotonic() + BLOCKED_WITHIN_SECONDS
    while not other_done.is_set():
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s = ANY(pg_blocking_pids(%s))", [me, other_pid])
            if cursor.fetchone()[0]:
                return
        if time.monotonic() > deadline:
            raise AssertionError("the second change neither waited for the first nor finished")
        time.sleep(0.01)


def race(first, second):
    """Run `first` and `second` at once, in two threads with their own
    database connections. `first` runs in a transaction that commits only
    once `second` is waiting on its locks (or done without them). Returns
    both outcomes: what each returned, or the exception it raised."""
    outcomes, failures = {}, []
    ready = threading.Barrier(2, timeout=BLOCKED_WITHIN_SECONDS)
    second_pid = []
    second_done = threading.Event()

    def outcome(change):
        try:
            return change()
        except Exception as error:  # the refused side of a race is an outcome
            return error

    def run_first():
        try:
            with transaction.atomic():
                outcomes["first"] = outcome(first)
                ready.wait()
                _wait_until_waiting_on_me(second_pid[0], second_done)
        except Exception as error:
            failures.append(error)
        finally:
            connection.close()

    def run_second():
        try:
            second_pid.append(_backend_pid())
            ready.wait()
            outcomes["second"] = outcome(second)
        except Exception as error:
            failures.append(error)
        finally:
            second_done.set()
            connection.close()

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return outcomes["first"], outcomes["second"]


def edit_form_data(lead, **changes) -> dict:
    """What the lead edit form posts: every field, some of them changed."""
    return {field: getattr(lead, field) for field in services.LEAD_DATA_FIELDS} | changes


# --- A lead edited, accepted and reassigned at once ---------------------------------------


@pytest.mark.parametrize("edit_first", [False, True], ids=["accept-first", "edit-first"])
def test_an_edit_racing_an_accept_loses_neither(rep, marketer, edit_first):
    lead = make_lead(stage=LeadStage.MQL, owner=rep, title="Engineer", phone="")
    as_the_edit_page_read_it = Lead.objects.get(pk=lead.pk)
    as_the_lead_page_read_it = Lead.objects.get(pk=lead.pk)

    def edit():
        return services.lead_update(
            lead=as_the_edit_page_read_it,
            actor=marketer,
            data=edit_form_data(as_the_edit_page_read_it, title="CTO", phone="+1 555 0100"),
        )

    def accept():
        return services.lead_accept(lead=as_the_lead_page_read_it, actor=rep)

    first, second = race(edit, accept) if edit_first else race(accept, edit)
    assert isinstance(first, Lead) and isinstance(second, Lead)
    lead.refresh_from_db()
    assert (lead.stage, lead.owner, lead.title, lead.phone) == (
        LeadStage.SAL,
        rep,
        "CTO",
        "+1 555 0100",
    )
    assert lead.version == 3  # both changes counted: boards holding either see a conflict
    assert LeadStageChange.objects.filter(lead=lead, to_stage=LeadStage.SAL).count() == 1
    edit_entry = AuditEntry.objects.get(action="lead.edit")
    assert edit_entry.changes == {"title": ["Engineer", "CTO"], "phone": ["", "+1 555 0100"]}


@pytest.mark.parametrize("assign_first", [False, True], ids=["accept-first", "assign-first"])
def test_an_assignment_racing_an_accept_loses_neither(manager, rep, revops, assign_first):
    make_team(manager=manager, members=[rep])
    lead = make_lead(stage=LeadStage.MQL)  # unassigned: the manager may accept it
    as_the_manager_read_it = Lead.objects.get(pk=lead.pk)
    as_the_admin_read_it = Lead.objects.get(pk=lead.pk)

    def accept():
        return services.lead_accept(lead=as_the_manager_read_it, actor=manager)

    def assign():
        return services.lead_assign(lead=as_the_admin_read_it, actor=revops, owner=rep)

    first, second = race(assign, accept) if assign_first else race(accept, assign)
    assert isinstance(first, Lead) and isinstance(second, Lead)
    lead.refresh_from_db()
    # Accepting claims only a lead nobody owns; the assignment to the rep stands.
    assert (lead.stage, lead.owner, lead.version) == (LeadStage.SAL, rep, 3)
    owner_before = None if assign_first else manager.pk
    assert AuditEntry.objects.get(action="lead.assign").changes == {"owner": [owner_before, rep.pk]}
    assert rep.notifications.filter(title__contains="assigned you").count() == 1


def test_two_managers_assigning_the_same_rep_at_once_give_one_assignment(make_user, manager, rep):
    other_manager = make_user("max", "Sales manager")
    make_team(manager=manager, members=[rep])
    lead = make_lead(stage=LeadStage.MQL)

    def assign(actor):
        return lambda: services.lead_assign(
            lead=Lead.objects.get(pk=lead.pk), actor=actor, owner=rep
        )

    race(assign(manager), assign(other_manager))
    lead.refresh_from_db()
    assert (lead.owner, lead.version) == (rep, 2)
    assert AuditEntry.objects.filter(action="lead.assign").count() == 1
    assert rep.notifications.filter(title__contains="assigned you").count() == 1


def test_an_edit_saved_after_a_rescore_keeps_the_score(marketer):
    from sla.scoring import leads_score
    from tests.factories import make_touchpoint
    from tests.sla_factories import make_icp, make_sla

    make_sla(), make_icp()
    lead = make_lead(title="Engineer")
    make_touchpoint(lead, type="webinar_attended")
    as_the_edit_page_read_it = Lead.objects.get(pk=lead.pk)
    leads_score([lead.pk], qualify=False)  # the touchpoint's task, committed meanwhile
    scored = Lead.objects.get(pk=lead.pk)
    assert scored.scored_at is not None and scored.score > 0
    services.lead_update(
        lead=as_the_edit_page_read_it,
        actor=marketer,
        data=edit_form_data(as_the_edit_page_read_it, title="CTO"),
    )
    lead.refresh_from_db()
    assert (lead.title, lead.score, lead.scored_at) == ("CTO", scored.score, scored.scored_at)


# --- Boards ------------------------------------------------------------------------------


def test_two_users_moving_the_same_deal_at_once_one_wins_the_other_is_told(rep, manager):
    make_team(manager=manager, members=[rep])
    deal = make_opportunity(owner=rep, stage="discovery")
    shown_version = deal.version  # both boards show the card at this version

    def move(actor, to_stage):
        return lambda: services.opportunity_move(
            opportunity=type(deal).objects.get(pk=deal.pk),
            actor=actor,
            to_stage=to_stage,
            expected_version=shown_version,
        )

    first, second = race(move(rep, "demo"), move(manager, "proposal"))
    assert first.stage == "demo"
    assert isinstance(second, services.ConflictError)
    assert second.current.stage == "demo"  # the loser's board is shown the deal as it is
    deal.refresh_from_db()
    assert (deal.stage, deal.version) == ("demo", shown_version + 1)
    assert list(
        OpportunityStageChange.objects.filter(opportunity=deal).values_list("to_stage", flat=True)
    ) == ["demo"]


def test_two_moves_of_the_same_lead_on_the_handoff_board_give_one_outcome(manager, rep):
    make_team(manager=manager, members=[rep])
    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    shown_version = lead.version

    def accept():
        return board_moves.lead_board_move(
            lead=lead, actor=rep, to_stage=LeadStage.SAL, expected_version=shown_version
        )

    def recycle():
        return board_moves.lead_board_move(
            lead=lead,
            actor=manager,
            to_stage=LeadStage.RECYCLED,
            expected_version=shown_version,
            reason=reason("no-timing"),
        )

    first, second = race(accept, recycle)
    assert first.stage == LeadStage.SAL
    assert isinstance(second, services.ConflictError) and second.current.stage == LeadStage.SAL
    lead.refresh_from_db()
    assert (lead.stage, lead.version) == (LeadStage.SAL, shown_version + 1)
    assert list(LeadStageChange.objects.filter(lead=lead).values_list("to_stage", flat=True)) == [
        LeadStage.SAL
    ]
    assert not lead.feedback.filter(verdict="rejected").exists()


# --- Imports -----------------------------------------------------------------------------


@pytest.mark.usefixtures("media_root")
def test_two_imports_of_the_same_file_started_at_once_import_it_once(marketer, monkeypatch):
    data = csv_bytes(
        ["email", "first_name"], [[f"p{i}@same{i}.example", f"P{i}"] for i in range(40)]
    )
    jobs = []
    for _ in range(2):  # two browser tabs, the same file
        job = import_services.import_job_create(
            kind="leads", uploaded_file=SimpleUploadedFile("leads.csv", data), actor=marketer
        )
        jobs.append(
            import_services.import_job_map(
                job=job,
                mapping={"email": "email", "first_name": "first_name"},
                options=ImportOptions(),
                actor=marketer,
            )
        )
    enqueued = []
    monkeypatch.setattr(
        import_services, "enqueue_on_commit", lambda task, job_id: enqueued.append(job_id)
    )

    def start(job):
        return lambda: import_services.import_job_start(job=job, actor=marketer)

    first, second = race(start(jobs[0]), start(jobs[1]))
    assert first.status == ImportJob.Status.QUEUED
    assert isinstance(second, import_services.ImportConflict) and second.running.pk == jobs[0].pk
    assert enqueued == [jobs[0].pk]
    for job in jobs:  # a stray task for the refused job changes nothing
        import_services.import_job_run(job_id=job.pk)
    statuses = dict(ImportJob.objects.values_list("pk", "status"))
    assert statuses == {jobs[0].pk: ImportJob.Status.DONE, jobs[1].pk: ImportJob.Status.PREVIEWED}
    assert Lead.objects.count() == 40
    assert LeadStageChange.objects.count() == 40  # one "captured" row per lead

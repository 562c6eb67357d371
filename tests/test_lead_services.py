"""Every lead and deal transition, allowed and refused, with its history row."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from leads import services
from leads.models import (
    Account,
    Activity,
    Channel,
    LeadFeedback,
    LeadStage,
    LeadStageChange,
    OpportunityStage,
    OpportunityStageChange,
)
from tests.factories import (
    make_account,
    make_competitor,
    make_lead,
    make_opportunity,
    make_team,
    reason,
)

pytestmark = pytest.mark.usefixtures("taxonomy")


def history(lead):
    return list(
        LeadStageChange.objects.filter(lead=lead)
        .order_by("changed_at", "id")
        .values_list("from_stage", "to_stage")
    )


def test_accept_moves_mql_to_sal_with_history_and_feedback(rep):
    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    services.lead_accept(lead=lead, actor=rep)
    lead.refresh_from_db()
    assert lead.stage == LeadStage.SAL
    assert lead.version == 2
    assert history(lead) == [("mql", "sal")]
    assert LeadFeedback.objects.get(lead=lead).verdict == LeadFeedback.Verdict.ACCEPTED


@pytest.mark.parametrize("stage", ["new", "sal", "sql", "recycled", "disqualified", "customer"])
def test_accept_is_refused_outside_mql(rep, stage):
    lead = make_lead(stage=stage, owner=rep)
    with pytest.raises(services.TransitionError, match="only MQL leads"):
        services.lead_accept(lead=lead, actor=rep)
    lead.refresh_from_db()
    assert lead.stage == stage
    assert not LeadStageChange.objects.filter(lead=lead).exists()


def assert_refused_and_unchanged(lead, stage, call, match):
    versions = lead.version
    with pytest.raises(services.TransitionError, match=match):
        call()
    lead.refresh_from_db()
    assert (lead.stage, lead.version) == (stage, versions)
    assert not LeadStageChange.objects.filter(lead=lead).exists()
    assert not LeadFeedback.objects.filter(lead=lead).exists()


@pytest.mark.parametrize(
    "stage", ["new", "sql", "opportunity", "customer", "recycled", "disqualified"]
)
def test_reject_is_refused_outside_mql_and_sal(rep, stage):
    lead = make_lead(stage=stage, owner=rep)
    assert_refused_and_unchanged(
        lead, stage,
        lambda: services.lead_reject(lead=lead, actor=rep, reason=reason("no-budget")),
        r"Cannot reject .* only MQL, SAL \(accepted\) leads can be",
    )  # fmt: skip


@pytest.mark.parametrize("stage", ["new", "mql", "sql", "opportunity", "rejected", "recycled"])
def test_qualify_is_refused_outside_sal(rep, stage):
    lead = make_lead(stage=stage, owner=rep)
    assert_refused_and_unchanged(
        lead, stage, lambda: services.lead_qualify(lead=lead, actor=rep), "only SAL"
    )


@pytest.mark.parametrize("stage", ["opportunity", "customer", "rejected", "disqualified"])
def test_disqualify_is_refused_once_the_lead_is_no_longer_open(rep, stage):
    lead = make_lead(stage=stage, owner=rep)
    assert_refused_and_unchanged(
        lead, stage,
        lambda: services.lead_disqualify(lead=lead, actor=rep, reason=reason("bad-data")),
        "Cannot disqualify",
    )  # fmt: skip


@pytest.mark.parametrize("stage", ["new", "mql", "sal", "opportunity", "customer"])
def test_convert_is_refused_outside_sql(rep, stage):
    lead = make_lead(stage=stage, owner=rep, account=make_account())
    assert_refused_and_unchanged(
        lead, stage, lambda: services.lead_convert(lead=lead, actor=rep), "only SQL"
    )
    assert not lead.opportunities.exists()


def test_winning_a_deal_leaves_a_lead_that_left_the_opportunity_stage_as_it_is(rep):
    """A lead becomes a customer only from "opportunity": a deal won after its
    lead was disqualified (say, a duplicate) does not revive the lead."""
    lead = make_lead(stage=LeadStage.SQL, owner=rep, account=make_account())
    opportunity = services.lead_convert(lead=lead, actor=rep)
    lead.refresh_from_db()
    type(lead).objects.filter(pk=lead.pk).update(stage=LeadStage.DISQUALIFIED)
    services.opportunity_move(
        opportunity=opportunity, actor=rep, to_stage="won", amount=Decimal("5000"),
        closed_on=timezone.localdate(),
    )  # fmt: skip
    lead.refresh_from_db()
    assert lead.stage == LeadStage.DISQUALIFIED
    assert not LeadStageChange.objects.filter(lead=lead, to_stage=LeadStage.CUSTOMER).exists()


@pytest.mark.parametrize("closed", ["won", "lost"])
def test_a_closed_deal_cannot_be_won_again(rep, closed):
    lead = make_lead(stage=LeadStage.OPPORTUNITY, owner=rep)
    opportunity = make_opportunity(owner=rep, stage=closed, source_lead=lead)
    with pytest.raises(services.TransitionError, match="closed deals do not move"):
        services.opportunity_move(
            opportunity=opportunity, actor=rep, to_stage="won" if closed == "lost" else "demo",
            amount=Decimal("1"), closed_on=timezone.localdate(),
        )  # fmt: skip
    lead.refresh_from_db()
    assert lead.stage == LeadStage.OPPORTUNITY
    with pytest.raises(services.TransitionError, match="already in"):
        services.opportunity_move(opportunity=opportunity, actor=rep, to_stage=closed)


def test_reject_requires_a_reject_reason_and_returns_lead_to_marketing(rep):
    campaign_lead = make_lead(stage=LeadStage.MQL, owner=rep, source_channel=Channel.WEBINAR)
    competitor = make_competitor("Rivalsoft")
    services.lead_reject(
        lead=campaign_lead,
        actor=rep,
        reason=reason("no-budget"),
        note="Budget frozen until Q3",
        competitor=competitor,
    )
    campaign_lead.refresh_from_db()
    assert campaign_lead.stage == LeadStage.RECYCLED
    assert campaign_lead.owner is None
    assert history(campaign_lead) == [("mql", "rejected"), ("rejected", "recycled")]
    feedback = LeadFeedback.objects.get(lead=campaign_lead)
    assert feedback.verdict == "rejected"
    assert feedback.reason.code == "no-budget"
    assert feedback.competitor == competitor
    assert feedback.channel == Channel.WEBINAR


def test_reject_refuses_a_reason_meant_for_lost_deals(rep):
    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    with pytest.raises(services.TransitionError, match="not a reason"):
        services.lead_reject(lead=lead, actor=rep, reason=reason("lost-to-competitor"))
    lead.refresh_from_db()
    assert lead.stage == LeadStage.MQL


def test_reject_refuses_without_reason(rep):
    lead = make_lead(stage=LeadStage.SAL, owner=rep)
    with pytest.raises(services.TransitionError, match="reason is required"):
        services.lead_reject(lead=lead, actor=rep, reason=None)


def test_qualify_and_convert_open_a_marketing_sourced_deal_on_the_account(rep):
    account = make_account(name="Acme", domain="acme.com")
    lead = make_lead(
        stage=LeadStage.SAL, owner=rep, account=account, source_channel=Channel.PAID_SEARCH
    )
    services.lead_qualify(lead=lead, actor=rep)
    opportunity = services.lead_convert(lead=lead, actor=rep, amount=Decimal("25000"))
    lead.refresh_from_db()
    assert lead.stage == LeadStage.OPPORTUNITY
    assert history(lead) == [("sal", "sql"), ("sql", "opportunity")]
    assert opportunity.account == account
    assert opportunity.source_lead == lead
    assert opportunity.is_marketing_sourced is True
    assert opportunity.owner == rep
    assert opportunity.stage == OpportunityStage.DISCOVERY
    assert OpportunityStageChange.objects.filter(opportunity=opportunity).count() == 1


def test_convert_without_account_creates_one_from_the_company(rep):
    lead = make_lead(
        stage=LeadStage.SQL, owner=rep, company="Initech", company_domain="initech.example"
    )
    opportunity = services.lead_convert(lead=lead, actor=rep)
    assert opportunity.account.name == "Initech"
    assert opportunity.account.domain == "initech.example"
    lead.refresh_from_db()
    assert lead.account == opportunity.account


def test_convert_is_refused_before_sql(rep):
    lead = make_lead(stage=LeadStage.SAL, owner=rep)
    with pytest.raises(services.TransitionError, match="only SQL"):
        services.lead_convert(lead=lead, actor=rep)


def test_outbound_lead_converts_to_a_sales_sourced_deal(rep):
    lead = make_lead(stage=LeadStage.SQL, owner=rep, source_channel=Channel.OUTBOUND)
    opportunity = services.lead_convert(lead=lead, actor=rep)
    assert opportunity.is_marketing_sourced is False


def test_disqualify_from_any_open_stage_with_reason(rep):
    for stage in ("mql", "sal", "sql"):
        lead = make_lead(stage=stage, owner=rep)
        services.lead_disqualify(lead=lead, actor=rep, reason=reason("bad-data"))
        lead.refresh_from_db()
        assert lead.stage == LeadStage.DISQUALIFIED
        assert history(lead) == [(stage, "disqualified")]


def test_disqualified_lead_cannot_be_disqualified_again(rep):
    lead = make_lead(stage=LeadStage.DISQUALIFIED, owner=rep)
    with pytest.raises(services.TransitionError):
        services.lead_disqualify(lead=lead, actor=rep, reason=reason("bad-data"))


def test_marketing_may_disqualify_only_leads_it_still_nurtures(marketer):
    nurtured = make_lead(stage=LeadStage.NEW)
    services.lead_disqualify(lead=nurtured, actor=marketer, reason=reason("student-job-seeker"))
    worked = make_lead(stage=LeadStage.SAL)
    with pytest.raises(PermissionDenied):
        services.lead_disqualify(lead=worked, actor=marketer, reason=reason("bad-data"))


def test_a_rep_cannot_work_someone_elses_lead(rep, make_user):
    other = make_user("otto", "Sales rep")
    lead = make_lead(stage=LeadStage.MQL, owner=other)
    with pytest.raises(PermissionDenied):
        services.lead_accept(lead=lead, actor=rep)
    lead.refresh_from_db()
    assert lead.stage == LeadStage.MQL


def test_a_manager_works_the_leads_of_their_team_only(manager, rep, make_user):
    make_team(manager=manager, members=[rep])
    team_lead = make_lead(stage=LeadStage.MQL, owner=rep)
    services.lead_accept(lead=team_lead, actor=manager)
    outsider = make_user("otto", "Sales rep")
    other_lead = make_lead(stage=LeadStage.MQL, owner=outsider)
    with pytest.raises(PermissionDenied):
        services.lead_accept(lead=other_lead, actor=manager)


def test_marketing_cannot_accept(marketer):
    lead = make_lead(stage=LeadStage.MQL)
    with pytest.raises(PermissionDenied):
        services.lead_accept(lead=lead, actor=marketer)


def test_first_call_is_first_contact_and_later_ones_do_not_move_it(rep):
    lead = make_lead(stage=LeadStage.SAL, owner=rep, response_due_at=timezone.now())
    services.activity_log(actor=rep, lead=lead, kind=Activity.Kind.NOTE, subject="Research")
    lead.refresh_from_db()
    assert lead.first_contact_at is None  # a note is not contact
    first = timezone.now() - timedelta(minutes=30)
    services.activity_log(actor=rep, lead=lead, kind="call", subject="Intro", occurred_at=first)
    services.activity_log(actor=rep, lead=lead, kind="email", subject="Follow-up")
    lead.refresh_from_db()
    assert lead.first_contact_at == first


def test_activity_in_the_future_is_refused(rep):
    lead = make_lead(stage=LeadStage.SAL, owner=rep)
    with pytest.raises(services.TransitionError, match="future"):
        services.activity_log(
            actor=rep,
            lead=lead,
            kind="call",
            subject="Later",
            occurred_at=timezone.now() + timedelta(days=1),
        )


def test_expected_version_mismatch_is_a_conflict_not_an_overwrite(rep):
    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    stale_version = lead.version
    services.lead_accept(lead=lead, actor=rep)
    with pytest.raises(services.ConflictError) as conflict:
        services.lead_reject(
            lead=lead, actor=rep, reason=reason("no-timing"), expected_version=stale_version
        )
    assert conflict.value.current.stage == LeadStage.SAL
    lead.refresh_from_db()
    assert lead.stage == LeadStage.SAL


@pytest.mark.django_db(transaction=True)
def test_two_reps_accepting_at_once_give_exactly_one_outcome(make_user, manager, taxonomy):
    rep_a = make_user("rep-a", "Sales manager")
    rep_b = make_user("rep-b", "Sales manager")
    lead = make_lead(stage=LeadStage.MQL)
    outcomes = []
    barrier = threading.Barrier(2)

    def accept(actor):
        try:
            barrier.wait()
            services.lead_accept(lead=type(lead).objects.get(pk=lead.pk), actor=actor)
            outcomes.append("accepted")
        except services.TransitionError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(u,)) for u in (rep_a, rep_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["accepted", "refused"]
    assert LeadStageChange.objects.filter(lead=lead, to_stage="sal").count() == 1


def test_winning_a_deal_from_a_lead_makes_the_lead_a_customer(rep):
    lead = make_lead(stage=LeadStage.SQL, owner=rep, account=make_account())
    opportunity = services.lead_convert(lead=lead, actor=rep)
    services.opportunity_move(opportunity=opportunity, actor=rep, to_stage="demo")
    services.opportunity_move(
        opportunity=opportunity,
        actor=rep,
        to_stage="won",
        amount=Decimal("30000"),
        closed_on=timezone.localdate(),
    )
    lead.refresh_from_db()
    assert lead.stage == LeadStage.CUSTOMER
    opportunity.refresh_from_db()
    assert opportunity.amount == Decimal("30000")
    assert list(
        OpportunityStageChange.objects.filter(opportunity=opportunity)
        .order_by("changed_at", "id")
        .values_list("from_stage", "to_stage")
    ) == [("", "discovery"), ("discovery", "demo"), ("demo", "won")]


def test_losing_needs_a_loss_reason_and_closed_deals_do_not_move(rep):
    opportunity = make_opportunity(owner=rep, stage="proposal")
    with pytest.raises(services.TransitionError, match="reason is required"):
        services.opportunity_move(opportunity=opportunity, actor=rep, to_stage="lost")
    services.opportunity_move(
        opportunity=opportunity,
        actor=rep,
        to_stage="lost",
        loss_reason=reason("price"),
        competitor=make_competitor(),
    )
    with pytest.raises(services.TransitionError, match="closed deals do not move"):
        services.opportunity_move(opportunity=opportunity, actor=rep, to_stage="demo")


def test_winning_needs_amount_and_close_date(rep):
    opportunity = make_opportunity(owner=rep, stage="negotiation")
    with pytest.raises(services.TransitionError, match="final amount and close date"):
        services.opportunity_move(opportunity=opportunity, actor=rep, to_stage="won")


def test_lead_upsert_matches_company_domain_but_never_public_mail(db):
    account = make_account(name="Globex", domain="globex.com")
    at_work = services.lead_upsert(email="Hank@Globex.com", data={"first_name": "Hank"}).lead
    assert at_work.email == "hank@globex.com"
    assert at_work.account == account
    assert history(at_work) == [("", "new")]
    private = services.lead_upsert(email="hank.private@gmail.com", data={}).lead
    assert private.account is None
    assert private.company_domain == ""
    # A public domain given as the company's counts as none, so the email decides.
    declared = services.lead_upsert(
        email="hank.home@gmail.com", data={"company_domain": "www.Gmail.com"}
    ).lead
    assert (declared.account, declared.company_domain) == (None, "")
    mixed = services.lead_upsert(email="hank2@globex.com", data={"company_domain": "gmail.com"})
    assert (mixed.lead.account, mixed.lead.company_domain) == (account, "globex.com")
    again = services.lead_upsert(email="hank2@globex.com", data={"company_domain": "GMAIL.COM"})
    assert not again.changed


def test_account_match_never_looks_up_a_public_mail_domain(db, django_assert_num_queries):
    acme = make_account(name="Acme", domain="acme.example")
    with django_assert_num_queries(0):
        assert services.account_match(email="jo@gmail.com", company_domain="gmail.com") is None
        assert services.account_match(email="jo@yahoo.com") is None
    assert services.account_match(email="jo@acme.example", company_domain="hotmail.com") == acme


def test_an_account_cannot_have_a_public_mail_domain(db):
    account = Account(name="Google", domain="https://www.Gmail.com/")
    with pytest.raises(ValidationError) as refused:
        account.full_clean()
    assert refused.value.message_dict["domain"] == [
        "gmail.com is a public mail domain: it is shared by people at every company, so no "
        "account can have it. Leave the domain empty or give the company's own."
    ]
    with (
        pytest.raises(IntegrityError, match="account_domain_not_public_mail"),
        transaction.atomic(),
    ):
        Account.objects.create(name="Google", domain="gmail.com")
    # Converting a lead whose company is known only by a public domain makes no such account.
    created = services.account_for_company(name="Freelancer", domain="gmail.com")
    assert created.domain == ""


def test_lead_upsert_updates_without_erasing_and_keeps_first_source(db):
    first = services.lead_upsert(
        email="a@b.example", data={"title": "CTO", "phone": "123"}, channel=Channel.WEBINAR
    )
    again = services.lead_upsert(
        email="a@b.example", data={"title": "CEO", "phone": ""}, channel=Channel.EMAIL
    )
    assert first.created and not again.created and again.changed
    lead = again.lead
    assert (lead.title, lead.phone, lead.source_channel) == ("CEO", "123", Channel.WEBINAR)
    unchanged = services.lead_upsert(email="a@b.example", data={"title": "CEO"})
    assert not unchanged.changed

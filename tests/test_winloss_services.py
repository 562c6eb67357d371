"""Win/loss services: who may write, the validation (both teams present, a
loss says how it was lost), drivers, action items and closing them by version."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError

from config import roles
from reporting import winloss_services as services
from reporting.models import ActionItem, Retrospective, RetrospectiveParticipant
from sla import versions
from tests.factories import make_campaign, make_competitor, make_lead
from tests.sla_factories import make_icp, make_sla
from tests.winloss_factories import category, make_action_item, make_closed_deal

pytestmark = pytest.mark.django_db


def test_a_lost_deal_retrospective_with_both_teams(marketer, manager):
    campaign = make_campaign(name="Webinar: TCO", promise="Cut fleet costs by 30%")
    lead = make_lead(source_campaign=campaign)
    deal = make_closed_deal(stage="lost", source_lead=lead)
    competitor = make_competitor("Northwind")

    retro = services.retrospective_create(
        opportunity=deal,
        actor=manager,
        participants=[manager, marketer],
        loss_type="competitor",
        competitor=competitor,
        decided_at_stage="proposal",
        pitch_match="partly",
        pitch_difference="We pitched speed, the campaign promised cost.",
        key_quotes="“Northwind was cheaper.”\n\n“Your demo was great.”",
        learnings="Lead with TCO.",
    )

    assert retro.outcome == Retrospective.Outcome.LOST
    assert retro.campaign == campaign  # from the source lead
    assert retro.created_by == manager
    assert retro.quotes == ["“Northwind was cheaper.”", "“Your demo was great.”"]
    assert retro.outcome_label == "Lost to a competitor"
    teams = dict(retro.participant_rows.values_list("user__username", "team"))
    assert teams == {"mona": "sales", "mia": "marketing"}


def test_both_teams_must_take_part(marketer, manager, rep):
    deal = make_closed_deal(stage="won")
    with pytest.raises(ValidationError) as error:
        services.retrospective_create(opportunity=deal, actor=rep, participants=[rep, manager])
    assert "missing: marketing" in str(error.value.message_dict["participants"])
    with pytest.raises(ValidationError) as error:
        services.retrospective_create(opportunity=deal, actor=marketer, participants=[marketer])
    assert "missing: sales" in str(error.value.message_dict["participants"])
    assert not Retrospective.objects.exists()


def test_a_revops_participant_counts_for_neither_team(marketer, revops):
    deal = make_closed_deal(stage="won")
    with pytest.raises(ValidationError) as error:
        services.retrospective_create(
            opportunity=deal, actor=revops, participants=[marketer, revops]
        )
    assert "participants" in error.value.message_dict


def test_a_loss_needs_a_decision_type_and_a_competitor_loss_names_it(marketer, rep):
    deal = make_closed_deal(stage="lost")
    with pytest.raises(ValidationError) as error:
        services.retrospective_create(opportunity=deal, actor=rep, participants=[rep, marketer])
    assert "loss_type" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        services.retrospective_create(
            opportunity=deal, actor=rep, participants=[rep, marketer], loss_type="competitor"
        )
    assert "competitor" in error.value.message_dict
    retro = services.retrospective_create(
        opportunity=deal, actor=rep, participants=[rep, marketer], loss_type="no_decision"
    )
    assert retro.loss_type == "no_decision"


def test_the_database_refuses_a_loss_without_decision_type():
    deal = make_closed_deal(stage="lost")
    with pytest.raises(IntegrityError):
        Retrospective.objects.create(opportunity=deal, outcome="lost", loss_type="")


def test_a_win_has_no_loss_type(marketer, rep):
    deal = make_closed_deal(stage="won")
    with pytest.raises(ValidationError) as error:
        services.retrospective_create(
            opportunity=deal, actor=rep, participants=[rep, marketer], loss_type="unknown"
        )
    assert "loss_type" in error.value.message_dict


def test_a_pitch_that_did_not_match_says_what_differed(marketer, rep):
    deal = make_closed_deal(stage="won")
    with pytest.raises(ValidationError) as error:
        services.retrospective_create(
            opportunity=deal, actor=rep, participants=[rep, marketer], pitch_match="no"
        )
    assert "pitch_difference" in error.value.message_dict


def test_only_closed_deals_and_only_one_retrospective_each(marketer, rep):
    open_deal = make_closed_deal(stage="won")
    open_deal.stage, open_deal.closed_on = "proposal", None
    open_deal.save()
    with pytest.raises(ValidationError, match="closed"):
        services.retrospective_create(
            opportunity=open_deal, actor=rep, participants=[rep, marketer]
        )
    deal = make_closed_deal(stage="won")
    services.retrospective_create(opportunity=deal, actor=rep, participants=[rep, marketer])
    with pytest.raises(ValidationError, match="already has"):
        services.retrospective_create(opportunity=deal, actor=rep, participants=[rep, marketer])


def test_users_without_a_role_cannot_write(make_user, marketer, rep):
    reader = make_user("reader")
    deal = make_closed_deal(stage="won")
    with pytest.raises(PermissionDenied):
        services.retrospective_create(opportunity=deal, actor=reader, participants=[rep, marketer])


def test_update_replaces_participants_and_follows_the_deal(marketer, rep, manager, make_user):
    other_marketer = make_user("max", roles.MARKETING)
    deal = make_closed_deal(stage="won")
    retro = services.retrospective_create(opportunity=deal, actor=rep, participants=[rep, marketer])
    retro = services.retrospective_update(
        retrospective=retro,
        actor=marketer,
        participants=[manager, other_marketer],
        learnings="Referenceable customers close faster.",
        held_on=date(2026, 1, 5),
    )
    assert retro.learnings == "Referenceable customers close faster."
    assert retro.held_on == date(2026, 1, 5)
    assert set(retro.participant_rows.values_list("user__username", flat=True)) == {"mona", "max"}
    assert RetrospectiveParticipant.objects.count() == 2


def test_one_driver_per_category(marketer, rep):
    retro = services.retrospective_create(
        opportunity=make_closed_deal(stage="won"), actor=rep, participants=[rep, marketer]
    )
    pricing = category("pricing-packaging")
    driver = services.driver_save(
        retrospective=retro, actor=rep, category=pricing, sentiment="helped", note="Bundle"
    )
    with pytest.raises(ValidationError) as error:
        services.driver_save(retrospective=retro, actor=rep, category=pricing, sentiment="hurt")
    assert "category" in error.value.message_dict
    services.driver_save(
        retrospective=retro, actor=marketer, category=pricing, sentiment="hurt", driver=driver
    )
    driver.refresh_from_db()
    assert driver.sentiment == "hurt"
    services.driver_delete(driver=driver, actor=marketer)
    assert not retro.drivers.exists()


def test_action_item_targets_exactly_one_thing(marketer, rep):
    retro = services.retrospective_create(
        opportunity=make_closed_deal(stage="won"), actor=rep, participants=[rep, marketer]
    )
    icp = make_icp()
    persona = icp.personas.first()
    due = date.today() + timedelta(days=30)
    with pytest.raises(ValidationError) as error:
        services.action_item_create(
            retrospective=retro, actor=rep, title="x", owner=marketer, due_on=due,
            target_kind="persona",
        )  # fmt: skip
    assert "target" in error.value.message_dict
    with pytest.raises(ValidationError):
        services.action_item_create(
            retrospective=retro, actor=rep, title="x", owner=marketer, due_on=due,
            target_kind="persona", target=icp,
        )  # fmt: skip
    with pytest.raises(ValidationError) as error:
        services.action_item_create(
            retrospective=retro, actor=rep, title="x", owner=marketer, due_on=due,
            target_kind="other",
        )  # fmt: skip
    assert "target_note" in error.value.message_dict
    item = services.action_item_create(
        retrospective=retro, actor=rep, title="Add the CFO's objection", owner=marketer,
        due_on=due, target_kind="persona", target=persona,
    )  # fmt: skip
    assert item.persona == persona and item.icp_version is None
    assert item.target == persona and item.is_open
    # Changing what it targets clears the old target.
    item = services.action_item_update(
        action_item=item, actor=rep, title="ICP: add logistics", owner=marketer, due_on=due,
        target_kind="icp", target=icp,
    )  # fmt: skip
    assert item.icp_version == icp and item.persona is None
    assert item.target_label == f"ICP {icp.label}"


def test_the_database_refuses_two_targets(marketer):
    retro = services.Retrospective.objects.create(
        opportunity=make_closed_deal(stage="won"), outcome="won"
    )
    icp = make_icp()
    with pytest.raises(IntegrityError):
        make_action_item(
            retro, owner=marketer, target_kind="icp", icp_version=icp,
            persona=icp.personas.first(),
        )  # fmt: skip


def test_status_changes_stamp_and_clear_closed_at(marketer, rep):
    retro = services.retrospective_create(
        opportunity=make_closed_deal(stage="won"), actor=rep, participants=[rep, marketer]
    )
    item = make_action_item(retro, owner=rep)
    item = services.action_item_status_set(action_item=item, actor=rep, status="done")
    assert item.closed_at is not None and not item.is_open
    item = services.action_item_status_set(action_item=item, actor=rep, status="in_progress")
    assert item.closed_at is None and item.is_open


def test_publishing_an_sla_closes_its_action_items_idempotently(marketer, rep, revops):
    make_sla()
    retro = services.retrospective_create(
        opportunity=make_closed_deal(stage="lost"), actor=rep, participants=[rep, marketer],
        loss_type="unknown",
    )  # fmt: skip
    sla_item = make_action_item(retro, owner=rep, target_kind="sla", target_note="")
    icp_item = make_action_item(retro, owner=rep, target_kind="icp", target_note="")
    draft = versions.sla_draft_create(actor=revops)

    with pytest.raises(ValidationError, match="cannot close"):
        services.action_item_close_by_version(action_item=icp_item, version=draft)
    published = versions.version_publish(
        version=draft, actor=revops, changelog="Faster responses.", closes_actions=[sla_item]
    )

    sla_item.refresh_from_db()
    assert sla_item.status == "done"
    assert sla_item.closed_by_sla_version == published
    closed_at = sla_item.closed_at
    sla_item.close_by_version(published)  # again: nothing changes
    sla_item.refresh_from_db()
    assert sla_item.closed_at == closed_at
    assert list(published.closed_action_items.all()) == [sla_item]


def test_an_icp_version_closes_persona_items_but_not_done_ones(marketer, rep):
    icp = make_icp()
    retro = services.retrospective_create(
        opportunity=make_closed_deal(stage="won"), actor=rep, participants=[rep, marketer]
    )
    persona_item = make_action_item(
        retro, owner=marketer, target_kind="persona", persona=icp.personas.first(), target_note=""
    )
    dropped = make_action_item(retro, owner=marketer, target_kind="icp", target_note="")
    services.action_item_status_set(action_item=dropped, actor=rep, status="dropped")
    item = services.action_item_close_by_version(action_item=persona_item, version=icp)
    assert item.closed_by_icp_version == icp and item.status == ActionItem.Status.DONE
    with pytest.raises(ValidationError, match="already dropped"):
        services.action_item_close_by_version(action_item=dropped, version=icp)

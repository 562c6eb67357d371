"""Win/loss pages: every URL, fragments for htmx, errors in place with 200,
permissions in the views, the deal page and home, and query counts."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from reporting.models import ActionItem, Retrospective
from tests.factories import make_campaign, make_competitor, make_lead
from tests.sla_factories import make_icp, make_sla
from tests.winloss_factories import (
    category,
    make_action_item,
    make_closed_deal,
    make_retrospective,
)

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def sla():
    return make_sla(retro_amount_threshold=Decimal(5000), retro_due_days=14)


@pytest.fixture
def lost_deal(rep, sla):
    campaign = make_campaign(name="Webinar: TCO", promise="Cut fleet costs by 30%")
    lead = make_lead(first_name="Jane", last_name="Buyer", source_campaign=campaign)
    return make_closed_deal(
        stage="lost", name="Globex fleet refresh", owner=rep, source_lead=lead,
        closed_on=timezone.localdate() - timedelta(days=3),
    )  # fmt: skip


@pytest.fixture
def retro(lost_deal, rep, marketer):
    return make_retrospective(
        opportunity=lost_deal,
        participants=[(rep, "sales"), (marketer, "marketing")],
        drivers=[("pricing-packaging", "hurt")],
        learnings="Lead with total cost.",
    )


def test_list_shows_retrospectives_and_reviews_due(client_for, marketer, retro, rep):
    due = make_closed_deal(stage="won", name="Initech rollout", owner=rep)
    response = client_for(marketer).get(reverse("winloss:list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Globex fleet refresh" in body and "Pricing and packaging" in body
    assert "Initech rollout" in body  # due
    assert response.headers["Vary"].count("HX-Request") == 1

    fragment = client_for(marketer).get(reverse("winloss:list"), {"outcome": "won"}, **HX)
    assert fragment.content.decode().lstrip().startswith('<div id="retro-results"')
    assert "Globex" not in fragment.content.decode()
    assert due.pk


def test_due_page_filters_to_my_deals(client_for, rep, manager, sla):
    make_closed_deal(stage="won", name="Mine", owner=rep)
    make_closed_deal(stage="won", name="Theirs", owner=manager)
    body = client_for(rep).get(reverse("winloss:due"), {"mine": "1"}).content.decode()
    assert "Mine" in body and "Theirs" not in body
    fragment = client_for(rep).get(reverse("winloss:due"), **HX).content.decode()
    assert fragment.lstrip().startswith('<div id="due-results"') and "Theirs" in fragment


def test_the_deal_page_and_home_show_the_review_due_to_its_owner(client_for, rep, lost_deal):
    body = client_for(rep).get(lost_deal.get_absolute_url()).content.decode()
    assert "Retrospective due" in body
    assert f"{reverse('winloss:create')}?opportunity={lost_deal.pk}" in body
    home = client_for(rep).get(reverse("home")).content.decode()
    assert "Retrospectives due" in home and "Globex fleet refresh" in home


def test_the_deal_page_shows_its_retrospective(client_for, manager, retro):
    body = client_for(manager).get(retro.opportunity.get_absolute_url()).content.decode()
    assert "Read the retrospective" in body and retro.get_absolute_url() in body
    assert "Retrospective due" not in body


def test_start_a_retrospective_from_the_picker(client_for, manager, marketer, lost_deal):
    client = client_for(manager)
    picker = client.get(reverse("winloss:create"), {"q": "globex"}).content.decode()
    assert "Globex fleet refresh" in picker and "Review due" in picker
    page = client.get(reverse("winloss:create"), {"opportunity": lost_deal.pk}).content.decode()
    assert "The lead&#x27;s story" in page or "The lead's story" in page
    assert "Cut fleet costs by 30%" in page  # the campaign's promise beside the form

    response = client.post(
        reverse("winloss:create"),
        {"opportunity": lost_deal.pk, "participants": [manager.pk], "held_on": "2026-01-10"},
    )
    assert response.status_code == 200  # errors in place
    body = response.content.decode()
    assert "missing: marketing" in body and "Say how the deal was lost" in body

    response = client.post(
        reverse("winloss:create"),
        {
            "opportunity": lost_deal.pk, "participants": [manager.pk, marketer.pk],
            "held_on": "2026-01-10", "loss_type": "no_decision", "decided_at_stage": "proposal",
            "key_quotes": "We will revisit next year.", "learnings": "Qualify budget earlier.",
            "campaign": lost_deal.source_lead.source_campaign_id,
        },
    )  # fmt: skip
    retro = Retrospective.objects.get()
    assert response.status_code == 302 and response.url == retro.get_absolute_url()
    assert retro.loss_type == "no_decision" and retro.campaign.name == "Webinar: TCO"
    again = client.get(reverse("winloss:create"), {"opportunity": lost_deal.pk})
    assert again.status_code == 302 and again.url == retro.get_absolute_url()


def test_open_deals_cannot_be_reviewed(client_for, manager, sla):
    deal = make_closed_deal(stage="won")
    deal.stage, deal.closed_on = "demo", None
    deal.save()
    response = client_for(manager).get(reverse("winloss:create"), {"opportunity": deal.pk})
    assert response.status_code == 302 and response.url == deal.get_absolute_url()


def test_readers_without_a_role_are_refused(client_for, make_user, retro):
    reader = client_for(make_user("reader"))
    assert reader.get(retro.get_absolute_url()).status_code == 200  # everyone reads
    assert reader.get(reverse("winloss:create")).status_code == 403
    url = reverse("winloss:driver_add", args=[retro.pk])
    assert (
        reader.post(url, {"category": category("timing").pk, "sentiment": "hurt"}).status_code
        == 403
    )
    assert retro.drivers.count() == 1


def test_detail_shows_the_story_and_edits_in_place(client_for, marketer, rep, retro):
    client = client_for(marketer)
    page = client.get(retro.get_absolute_url()).content.decode()
    assert "Stage history" in page and "Lead with total cost." in page
    assert "Pricing and packaging" in page

    form = client.get(retro.get_absolute_url(), {"edit": "1"}, **HX).content.decode()
    assert form.lstrip().startswith('<section class="card" id="retro-summary"')
    assert 'name="participants"' in form

    url = reverse("winloss:edit", args=[retro.pk])
    bad = client.post(url, {"participants": [rep.pk], "held_on": "2026-01-12"}, **HX)
    assert bad.status_code == 200 and "missing: marketing" in bad.content.decode()
    ok = client.post(
        url,
        {"participants": [rep.pk, marketer.pk], "held_on": "2026-01-12",
         "loss_type": "unknown", "learnings": "Price earlier."},
        **HX,
    )  # fmt: skip
    assert ok.status_code == 200 and "Price earlier." in ok.content.decode()
    assert "retrospective-changed" in ok.headers["HX-Trigger"]
    retro.refresh_from_db()
    assert retro.loss_type == "unknown"


def test_drivers_added_edited_and_removed_in_place(client_for, manager, retro):
    client = client_for(manager)
    add = reverse("winloss:driver_add", args=[retro.pk])
    response = client.post(
        add,
        {"driver_new-category": "", "category": category("timing").pk, "sentiment": "hurt",
         "note": "Budget froze in Q3."},
        **HX,
    )  # fmt: skip
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<section class="card" id="drivers"')
    assert retro.drivers.filter(category__code="timing", sentiment="hurt").exists()

    duplicate = client.post(
        add, {"category": category("timing").pk, "sentiment": "helped"}, **HX
    ).content.decode()
    assert "already a driver here" in duplicate

    driver = retro.drivers.get(category__code="timing")
    edit_form = client.get(retro.get_absolute_url(), {"driver": driver.pk}, **HX).content.decode()
    assert "Save driver" in edit_form
    client.post(
        reverse("winloss:driver_edit", args=[retro.pk, driver.pk]),
        {"category": category("timing").pk, "sentiment": "helped", "note": "Actually it helped"},
        **HX,
    )
    driver.refresh_from_db()
    assert driver.sentiment == "helped"
    plain = client.post(reverse("winloss:driver_delete", args=[retro.pk, driver.pk]))
    assert plain.status_code == 302 and plain.url == retro.get_absolute_url()
    assert not retro.drivers.filter(pk=driver.pk).exists()


def test_action_items_added_edited_and_moved(client_for, marketer, rep, retro):
    icp = make_icp()
    client = client_for(marketer)
    add = reverse("winloss:action_add", args=[retro.pk])
    due = (date.today() + timedelta(days=30)).isoformat()
    missing_target = client.post(
        add, {"title": "Add logistics to the ICP", "owner": marketer.pk, "due_on": due,
              "target_kind": "icp", "status": "open"}, **HX,
    ).content.decode()  # fmt: skip
    assert "Choose the icp" in missing_target
    response = client.post(
        add, {"title": "Add logistics to the ICP", "owner": marketer.pk, "due_on": due,
              "target_kind": "icp", "icp_version": icp.pk, "status": "open"}, **HX,
    )  # fmt: skip
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="card" id="action-items"')
    assert f"ICP {icp.label}" in body
    item = ActionItem.objects.get()
    assert item.icp_version == icp and item.owner == marketer

    status_url = reverse("winloss:action_status", args=[retro.pk, item.pk])
    client.post(status_url, {"status": "in_progress"}, **HX)
    item.refresh_from_db()
    assert item.status == "in_progress"

    edit = reverse("winloss:action_edit", args=[retro.pk, item.pk])
    client.post(
        edit, {"title": "Persona: add the COO", "owner": rep.pk, "due_on": due,
               "target_kind": "persona", "persona": icp.personas.first().pk, "status": "done"},
    )  # fmt: skip
    item.refresh_from_db()
    assert item.persona is not None and item.icp_version is None
    assert item.status == "done" and item.closed_at is not None


def test_action_item_list_and_insights(client_for, manager, rep, retro):
    make_action_item(retro, owner=rep, title="Rework the pricing one-pager")
    client = client_for(manager)
    body = client.get(reverse("winloss:actions")).content.decode()
    assert "Rework the pricing one-pager" in body
    fragment = client.get(reverse("winloss:actions"), {"mine": "on"}, **HX).content.decode()
    assert fragment.lstrip().startswith('<div id="action-results"')
    assert "Rework the pricing" not in fragment  # the manager owns none

    page = client.get(reverse("winloss:insights"), {"period": "this_quarter"})
    assert page.status_code == 200
    body = page.content.decode()
    assert "Top drivers of losses" in body and "Pricing and packaging" in body
    assert "How drivers are weighted" in body and "Rework the pricing one-pager" in body
    fragment = client.get(
        reverse("winloss:insights"), {"period": "custom", "start": "2020-01-01", "end": "2020-03-31"},
        **HX,
    ).content.decode()  # fmt: skip
    assert fragment.lstrip().startswith('<div id="insight-results"')
    assert "Q1 2020" in fragment
    invalid = client.get(reverse("winloss:insights"), {"period": "custom"})
    assert invalid.status_code == 200 and "Give both dates" in invalid.content.decode()


def test_pages_query_counts_do_not_grow(client_for, manager, marketer, rep, sla):
    competitor = make_competitor("Northwind")
    client = client_for(manager)

    def add(count):
        for _ in range(count):
            retrospective = make_retrospective(
                opportunity=make_closed_deal(stage="lost", owner=rep),
                loss_type="competitor", competitor=competitor,
                participants=[(rep, "sales"), (marketer, "marketing")],
                drivers=[("pricing-packaging", "hurt"), ("timing", "helped")],
            )  # fmt: skip
            make_action_item(retrospective, owner=rep)
            make_closed_deal(stage="won", owner=rep)  # due a review

    def counts():
        result = {}
        for name in ("winloss:list", "winloss:due", "winloss:actions", "winloss:insights"):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(reverse(name)).status_code == 200
            result[name] = len(queries)
        retrospective = Retrospective.objects.first()
        with CaptureQueriesContext(connection) as queries:
            client.get(retrospective.get_absolute_url())
        result["detail"] = len(queries)
        return result

    add(2)
    small = counts()
    add(8)
    assert counts() == small


def test_publishing_a_version_closes_the_action_items_picked(client_for, revops, marketer, retro):
    from sla import versions

    icp = make_icp()
    sla_item = make_action_item(
        retro, owner=marketer, title="Answer hand-raisers within the hour", target_kind="sla",
        target_note="",
    )  # fmt: skip
    icp_item = make_action_item(
        retro, owner=marketer, title="Drop logistics from the ICP", target_kind="icp",
        icp_version=icp, target_note="",
    )  # fmt: skip
    draft = versions.sla_draft_create(actor=revops)
    client = client_for(revops)
    page = client.get(draft.get_absolute_url()).content.decode()
    assert "Answer hand-raisers within the hour" in page  # offered on the publish form
    assert "Drop logistics from the ICP" not in page  # an ICP item: not for an SLA

    response = client.post(
        reverse("sla:sla_publish", args=[draft.pk]),
        {"changelog": "Faster answers to hand-raisers.", "closes_actions": [sla_item.pk]},
    )
    assert response.status_code == 302
    sla_item.refresh_from_db()
    icp_item.refresh_from_db()
    assert sla_item.closed_by_sla_version_id == draft.pk and sla_item.status == "done"
    assert icp_item.is_open
    page = client.get(draft.get_absolute_url()).content.decode()
    assert "Why it changed" in page and "Answer hand-raisers within the hour" in page
    detail = client.get(retro.get_absolute_url()).content.decode()
    assert f'closed by <a href="{draft.get_absolute_url()}">SLA {draft.label}</a>' in detail

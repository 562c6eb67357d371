"""The win/loss journey in a real browser: a sales manager sees a lost deal's
retrospective due, starts it with a marketer as participant and adds a
driver; the marketer adds an action item against the ICP; both see it in the
insights and on the QBR page of the quarter the deal closed in."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from leads.models import Channel
from reporting.models import ActionItem, Retrospective
from tests.conftest import login
from tests.factories import make_account, make_campaign, make_competitor, make_lead, make_touchpoint
from tests.sla_factories import make_icp, make_sla
from tests.winloss_factories import driver_categories_seed, make_closed_deal

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_manager_and_marketer_hold_a_retrospective_and_read_the_insights(page, manager, marketer):
    driver_categories_seed()
    make_sla(retro_amount_threshold=Decimal(5000), retro_due_days=14)
    icp = make_icp()
    make_competitor("Northwind")
    campaign = make_campaign(
        name="Webinar: total cost of ownership", channel=Channel.WEBINAR,
        promise="Cut fleet costs by 30% over three years",
    )  # fmt: skip
    lead = make_lead(first_name="Jane", last_name="Buyer", source_campaign=campaign)
    make_touchpoint(lead, type="webinar_attended", campaign=campaign)
    deal = make_closed_deal(
        stage="lost", name="Globex fleet refresh", owner=manager, source_lead=lead,
        account=make_account(name="Globex", employees=5000), amount=Decimal(42000),
        closed_on=timezone.localdate(),  # today: "this quarter" holds it on any day
    )  # fmt: skip

    # The manager owns the deal: home and the deal page say a review is due.
    login(page, "mona")
    expect(page.locator("#retrospectives-due")).to_contain_text("Globex fleet refresh")
    due = page.locator("#retrospectives-due")
    due.get_by_role("link", name="Globex fleet refresh", exact=True).click()
    panel = page.locator("#deal-retrospective")
    expect(panel).to_contain_text("Retrospective due")
    panel.get_by_role("link", name="Start the retrospective").click()

    expect(page.get_by_role("heading", name="Retrospective: Globex fleet refresh")).to_be_visible()
    expect(page.locator(".deal-story")).to_contain_text("Webinar attended")  # the lead's story
    expect(page.locator(".deal-story")).to_contain_text("Cut fleet costs by 30%")
    page.get_by_role("button", name="Record the retrospective").click()
    # Only the manager took part so far, and a loss needs its decision type.
    expect(page.locator(".errorlist").first).to_be_visible()
    expect(page.get_by_text("missing: marketing")).to_be_visible()
    page.get_by_label("Mia (Marketing)").check()
    page.get_by_label("How was it lost?").select_option(label="Lost to a competitor")
    page.get_by_label("Competitor").select_option(label="Northwind")
    page.get_by_label("Decided at stage").select_option(label="Proposal")
    page.get_by_label("Did the pitch match what the campaign promised?").select_option("partly")
    page.get_by_label("What differed").fill("We pitched speed; the webinar promised lower cost.")
    page.get_by_label("Key quotes").fill("Northwind showed us the three-year cost.")
    page.get_by_label("Learnings").fill("Show the three-year cost before the proposal.")
    page.get_by_role("button", name="Record the retrospective").click()

    expect(page.locator("#retro-summary")).to_contain_text("Lost to a competitor")
    expect(page.locator("#retro-summary")).to_contain_text("Mia · Marketing")
    drivers = page.locator("#drivers")
    drivers.get_by_label("Category").select_option(label="Pricing and packaging")
    drivers.get_by_label("Hurt").check()
    drivers.get_by_label("Note").fill("Northwind bundled three years of service.")
    drivers.get_by_role("button", name="Add driver").click()
    expect(page.locator("#drivers .alert-success")).to_contain_text("Driver added")
    expect(page.locator("#drivers table")).to_contain_text("Pricing and packaging")
    page.get_by_role("button", name="Log out").click()

    # The marketer adds an action item against the ICP, in place.
    login(page, "mia")
    page.get_by_role("link", name="Win/loss", exact=True).first.click()
    page.locator("#retro-results").get_by_role("link", name="Globex fleet refresh").click()
    actions = page.locator("#action-items")
    actions.get_by_text("Add an action item").click()
    actions.get_by_label("What will change").fill("Weight total cost of ownership in the ICP")
    actions.get_by_label("Owner").select_option(label="Mia")
    actions.get_by_label("Due").fill((timezone.localdate() + timedelta(days=30)).isoformat())
    actions.get_by_label("It changes").select_option(label="The ICP")
    expect(actions.get_by_label("Persona")).to_be_hidden()  # only the ICP field shows
    actions.get_by_label("ICP version").select_option(value=str(icp.pk))
    actions.get_by_role("button", name="Add action item").click()
    expect(page.locator("#action-items .alert-success")).to_contain_text("Action item added")
    expect(page.locator("#action-items table")).to_contain_text(f"ICP {icp.label}")
    item = ActionItem.objects.get()
    assert item.icp_version == icp and item.retrospective.opportunity == deal
    assert Retrospective.objects.get().participant_rows.count() == 2

    # Insights: the loss driver, coverage and the open action item.
    page.goto(reverse("winloss:insights"))
    page.get_by_label("Period").select_option("this_quarter")
    expect(page).to_have_url(re.compile(r"period=this_quarter"))
    expect(page.locator("#top-losses")).to_contain_text("Pricing and packaging")
    expect(page.locator("#coverage")).to_contain_text("1 of 1")
    expect(page.locator("#by-competitor")).to_contain_text("Northwind")
    expect(page.locator("#open-action-items")).to_contain_text(
        "Weight total cost of ownership in the ICP"
    )

    # The QBR page of this quarter (the deal's) gathers the themes and the open action item.
    today = timezone.localdate()
    page.goto(reverse("reporting:qbr", args=[today.year, (today.month - 1) // 3 + 1]))
    themes = page.locator("section[aria-labelledby=themes-title]")
    expect(themes).to_contain_text("0 won and 1 lost deals reviewed")
    expect(themes.locator("ol").nth(1)).to_contain_text("Pricing and packaging")
    actions = page.get_by_role("table", name="Open action items")
    expect(actions).to_contain_text("Weight total cost of ownership in the ICP")
    expect(actions).to_contain_text("The ICP")

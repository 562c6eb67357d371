"""The leads journey in a real browser: a rep rejects a lead with a reason, and
a marketer sees that reason in the feedback view."""

import re

import pytest
from playwright.sync_api import expect

from leads.models import Channel, LeadStage
from tests.conftest import login
from tests.factories import make_campaign, make_lead, make_touchpoint

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_rep_rejects_a_lead_and_marketing_reads_the_reason(page, rep, marketer, taxonomy):
    campaign = make_campaign(name="Hardware buyers webinar", channel=Channel.WEBINAR)
    lead = make_lead(
        first_name="Jane",
        last_name="Doe",
        company="Tiny Shop",
        stage=LeadStage.MQL,
        owner=rep,
        source_campaign=campaign,
        source_channel=Channel.WEBINAR,
    )
    make_touchpoint(lead, type="webinar_attended", campaign=campaign)

    login(page, "ray")
    page.get_by_role("link", name="Leads", exact=True).first.click()
    expect(page.get_by_role("heading", name="Leads", level=1)).to_be_visible()
    page.get_by_label("Search").fill("jane")
    results = page.locator("#lead-results")
    expect(results).to_contain_text("Jane Doe")
    expect(page).to_have_url(re.compile(r"q=jane"))  # the filter is in the URL
    results.get_by_role("link", name="Jane Doe").click()

    expect(page.get_by_role("heading", name="Jane Doe")).to_be_visible()
    expect(page.locator("#timeline")).to_contain_text("Webinar attended")
    page.get_by_role("link", name="Reject").click()
    page.get_by_label("Why are you rejecting it?").select_option(label="Not an ICP fit")
    page.get_by_label("Note").fill("Five employees, buys at retail.")
    page.get_by_label("Too expensive").check()
    page.get_by_role("button", name="Reject").click()
    expect(page.locator("#lead-main .alert-success")).to_contain_text("returned to marketing")
    expect(page.locator("#timeline")).to_contain_text("Not an ICP fit")
    page.get_by_role("button", name="Log out").click()

    login(page, "mia")
    page.goto("/feedback/")
    expect(page.get_by_role("heading", name="Sales feedback")).to_be_visible()
    expect(page.locator("#feedback-results")).to_contain_text("Not an ICP fit")
    page.get_by_label("Group by").select_option("campaign")
    expect(page.locator("#feedback-results")).to_contain_text("Hardware buyers webinar")
    expect(page).to_have_url(re.compile(r"group_by=campaign"))
    expect(page.locator("#feedback-results")).to_contain_text("Too expensive")
    expect(page.locator("#feedback-results")).to_contain_text("Five employees, buys at retail.")

"""The leads journeys in a real browser: a rep rejects a lead with a reason, and
a marketer sees that reason in the feedback view; a marketer filters and
pages the lead list in place and the back button retraces the steps."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
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


def test_lead_list_filters_and_pages_in_place_and_the_back_button_retraces(page, marketer):
    now = timezone.now()
    for n in range(55):  # more than a page (50)
        make_lead(first_name="Pager", last_name=f"{n:02d}", stage=LeadStage.MQL,
                  created_at=now - timedelta(minutes=n))  # fmt: skip
    for n in range(3):
        make_lead(first_name="Newbie", last_name=f"{n}", stage=LeadStage.NEW,
                  created_at=now - timedelta(hours=2, minutes=n))  # fmt: skip

    login(page, "mia")
    page.goto("/leads/")
    results = page.locator("#lead-results")
    expect(results.locator("#lead-count")).to_contain_text("58 leads match")
    # A marker a full page load would wipe: the steps below must swap in place.
    page.evaluate("window.inPlace = true")

    page.get_by_text("More filters").click()
    page.get_by_label("Stage").select_option("mql")
    expect(results.locator("#lead-count")).to_contain_text("55 leads match")
    expect(page).to_have_url(re.compile(r"stage=mql"))
    expect(results).not_to_contain_text("Newbie")
    expect(results.get_by_role("link", name="Pager 00")).to_be_visible()

    results.get_by_role("link", name="Next →").click()
    expect(page).to_have_url(re.compile(r"stage=mql.*after="))
    expect(results.get_by_role("link", name="Pager 54")).to_be_visible()
    expect(results.get_by_role("link", name="Pager 00")).to_have_count(0)
    expect(results.get_by_role("link", name="← Previous")).to_be_visible()
    assert page.evaluate("window.inPlace") is True

    first_page = re.compile(r"^(?!.*after=).*stage=mql")
    page.go_back()  # the first page of the filtered list
    expect(page).to_have_url(first_page)
    expect(results.get_by_role("link", name="Pager 00")).to_be_visible()
    expect(results.get_by_role("link", name="Pager 54")).to_have_count(0)
    expect(results.locator("#lead-count")).to_contain_text("55 leads match")

    page.go_back()  # the list before any filter
    expect(page).to_have_url(re.compile(r"/leads/$"))
    expect(results.locator("#lead-count")).to_contain_text("58 leads match")

    page.go_forward()
    expect(page).to_have_url(first_page)
    expect(results.locator("#lead-count")).to_contain_text("55 leads match")

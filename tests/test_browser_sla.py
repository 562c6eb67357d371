"""The agreement journey in a real browser: a RevOps admin clones the SLA,
lowers the threshold, reads the diff and the impact, publishes, and the lead
list shows the leads qualified under the new version."""

import re

import pytest
from playwright.sync_api import expect

from sla import tasks
from sla.models import RescoreJob
from tests.conftest import login
from tests.factories import make_account, make_lead, make_touchpoint
from tests.sla_factories import make_icp, make_sla

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _lead_scoring_50(name):
    """Fit 40 (software, enterprise, 1000+ employees) + one download (10)."""
    first, last = name.split()
    account = make_account(name=f"{last} Corp", industry="software", employees=5000)
    lead = make_lead(
        first_name=first, last_name=last, account=account, employees=5000, segment="enterprise"
    )
    make_touchpoint(lead, type="content_download")
    return lead


def test_admin_lowers_the_threshold_reads_diff_and_impact_publishes_and_leads_qualify(
    page, revops, monkeypatch
):
    make_sla(mql_threshold=60, title="First agreement")
    make_icp()
    between = [_lead_scoring_50(name) for name in ("Ada Byron", "Alan Turing", "Grace Hopper")]
    make_lead(first_name="Low", last_name="Scorer", title="Student")  # 0: qualifies nowhere
    # The publish sends the re-score tasks after commit; here the test runs them.
    enqueued = []
    monkeypatch.setattr(
        tasks.rescore_lane_run,
        "apply_async",
        lambda args=(), kwargs=None, **options: enqueued.append(tuple(args)),
    )

    login(page, "rosa")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="SLA & ICP").click()
    expect(page.get_by_role("heading", name="The agreement: SLA & ICP")).to_be_visible()
    page.get_by_role("button", name="New SLA draft from the version in force").click()
    expect(page.get_by_role("heading", name=re.compile(r"SLA v2: First agreement"))).to_be_visible()

    qualification = page.locator("#section-qualification")
    expect(qualification).to_contain_text("reaches 60 out of 100")
    qualification.get_by_role("link", name="Edit").click()
    page.get_by_label("MQL score threshold").fill("0")
    qualification.get_by_role("button", name="Save").click()
    expect(qualification.locator(".errorlist")).to_contain_text("from 1 to 100")  # in place
    page.get_by_label("MQL score threshold").fill("45")
    qualification.get_by_role("button", name="Save").click()
    expect(qualification.locator(".alert-success")).to_contain_text("Saved")
    expect(qualification).to_contain_text("reaches 45 out of 100")

    page.get_by_role("link", name="What changed from v1").click()
    expect(page.get_by_role("heading", name="What changed in SLA v2")).to_be_visible()
    change = page.get_by_role("row", name=re.compile("MQL score threshold"))
    expect(change).to_contain_text("60")
    expect(change).to_contain_text("45")

    page.get_by_role("link", name="SLA v2").click()
    page.get_by_role("link", name="Impact on the last 90 days").click()
    expect(page.locator("#impact-draft-total")).to_have_text("3")
    expect(page.locator("#impact-current-total")).to_have_text("0")
    gained = page.get_by_role("table", name="Leads that qualify only under the draft")
    for lead in between:
        expect(gained.get_by_role("link", name=lead.full_name)).to_be_visible()

    page.get_by_role("link", name="Publish…").click()
    publish = page.locator("#publish-card")
    publish.get_by_label("Changelog").fill("Lower the threshold to 45: sales has capacity.")
    publish.get_by_role("button", name="Publish v2").click()
    expect(page.get_by_role("heading", name=re.compile("SLA v2"))).to_be_visible()
    expect(page.locator(".record-title .badge")).to_have_text("In force")
    progress = page.locator("#rescore progress")
    expect(progress).to_be_visible()

    job = RescoreJob.objects.get()
    assert len(enqueued) == job.lane_count
    for job_id, lane in enqueued:
        tasks.rescore_lane_run(job_id, lane)  # what the worker does
    expect(page.locator("#rescore")).to_contain_text("Done", timeout=5000)  # htmx polling
    expect(progress).to_have_attribute("value", "100")

    page.goto("/leads/?stage=mql")
    results = page.locator("#lead-results")
    for lead in between:
        expect(results.get_by_role("link", name=lead.full_name)).to_be_visible()
    expect(results).not_to_contain_text("Low Scorer")

    # The lead list shows the leads qualified under the new version, by that version.
    page.goto("/leads/")
    expect(results).to_contain_text("Low Scorer")
    page.get_by_label("Qualified under").select_option(label="v2 — First agreement")
    expect(page).to_have_url(re.compile(r"sla_version=\d+"))
    expect(results).not_to_contain_text("Low Scorer")
    expect(results.locator("#lead-count")).to_contain_text("3 leads match")
    for lead in between:
        row = results.get_by_role("row", name=re.compile(lead.full_name))
        expect(row).to_contain_text("MQL under v2")

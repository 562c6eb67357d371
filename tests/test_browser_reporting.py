"""The shared dashboard in a real browser: open it, change the period (the
figures update in place and the URL keeps the choice), follow a figure to
the rows behind it, and print the QBR without a CSP violation."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from leads.models import Channel, Opportunity
from reporting.rollups import reporting_refresh
from tests.conftest import login
from tests.factories import make_account, make_lead, make_touchpoint

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dashboard_period_change_and_the_rows_behind_a_figure(page, marketer, rep):
    now = timezone.now()
    account = make_account(name="Globex")
    lead = make_lead(source_channel=Channel.WEBINAR, created_at=now - timedelta(days=200))
    make_touchpoint(lead, occurred_at=now - timedelta(days=200), channel=Channel.WEBINAR)
    # One deal, won four months ago: in the last 12 months, not in this month.
    Opportunity.objects.create(
        name="Globex fleet refresh", account=account, source_lead=lead, owner=rep,
        amount=Decimal(48000), created_at=now - timedelta(days=150), stage="won",
        closed_on=(now - timedelta(days=120)).date(), source_channel=Channel.WEBINAR,
        is_marketing_sourced=True,
    )  # fmt: skip
    reporting_refresh()

    login(page, "mia")
    page.goto("/reporting/?period=month")
    expect(page.get_by_role("heading", name="Shared dashboard")).to_be_visible()
    body = page.locator("#dashboard-body")
    expect(body).to_contain_text("This month")
    expect(page.locator("#figure-won_revenue .stat")).to_have_text("$0")

    page.get_by_label("Period:").select_option("year")
    expect(body).to_contain_text("Last 12 months")
    expect(page).to_have_url(re.compile(r"period=year"))
    expect(page.locator("#figure-won_revenue .stat")).to_have_text("$48,000")
    expect(page.locator("#figure-sourced_pipeline .stat")).to_have_text("$48,000")

    page.locator("#figure-won_revenue").get_by_role("link", name=re.compile("Rows behind")).click()
    expect(page.get_by_role("heading", name="Deals won")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/reporting/rows/won_revenue/\?period=year"))
    rows = page.locator("#rows-body")
    expect(rows).to_contain_text("Globex fleet refresh")
    expect(rows).to_contain_text("$48,000")
    rows.get_by_role("link", name="Globex fleet refresh").click()
    expect(page.get_by_role("heading", name="Globex fleet refresh")).to_be_visible()


def test_attribution_models_side_by_side_and_the_qbr_prints(page, marketer):
    now = timezone.now()
    lead = make_lead(source_channel=Channel.PAID_SEARCH, created_at=now - timedelta(days=30))
    make_touchpoint(lead, occurred_at=now - timedelta(days=30), channel=Channel.PAID_SEARCH)
    make_touchpoint(lead, occurred_at=now - timedelta(days=10), channel=Channel.EMAIL)
    Opportunity.objects.create(name="Initech laptops", source_lead=lead, amount=Decimal(10000),
                               created_at=now - timedelta(days=5), is_marketing_sourced=True)  # fmt: skip
    reporting_refresh()

    login(page, "mia")
    page.goto("/reporting/attribution/?period=90d")
    table = page.get_by_role("table", name="Credit by channel")
    expect(table).to_contain_text("Paid search")
    expect(table).to_contain_text("$5,000")  # linear: half each
    page.get_by_label("Model", exact=True).select_option("first_touch")
    expect(page).to_have_url(re.compile(r"model_a=first_touch"))
    expect(table.get_by_role("row", name=re.compile("Paid search"))).to_contain_text("$10,000")

    page.goto("/reporting/qbr/")
    expect(
        page.get_by_role("heading", name=re.compile("Quarterly business review"))
    ).to_be_visible()
    page.emulate_media(media="print")
    expect(page.locator(".topbar")).to_be_hidden()
    expect(page.get_by_role("button", name="Print or save as PDF")).to_be_hidden()
    page.pdf(path="/dev/null")  # prints without errors

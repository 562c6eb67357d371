"""The CSV import journey in Chromium: upload, map, dry run, import, result, download."""

import csv
import re

import pytest
from playwright.sync_api import expect

from config import demo
from leads.models import ImportJob, Lead
from tests.conftest import login
from tests.import_support import csv_bytes, media_root, tasks_inline  # noqa: F401 (fixtures)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("media_root", "tasks_inline"),
]


def test_a_marketer_imports_leads_and_downloads_the_rejected_rows(page, tmp_path):
    demo.demo_users_create()
    path = tmp_path / "webinar-leads.csv"
    path.write_bytes(
        csv_bytes(
            ["E-mail", "First Name", "Employees"],
            [["ada@acme.io", "Ada", "120"], ["nope", "Bad", "many"], ["bob@acme.io", "Bob", ""]],
        )
    )
    login(page, "marketing", demo.DEMO_PASSWORD)
    page.goto("/imports/")
    page.get_by_label("What the file holds").select_option("leads")
    page.locator("input[type=file]").set_input_files(path)
    page.get_by_role("button", name="Upload and map columns").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("webinar-leads.csv")
    expect(page.get_by_label("Email")).to_have_value("E-mail")
    expect(page.get_by_label("First name")).to_have_value("First Name")
    page.get_by_role("button", name="Run the dry run").click()

    preview = page.locator("#preview")
    expect(preview).to_contain_text("Checked all 3 rows")
    expect(preview).to_contain_text("“nope” is not a valid email address.")
    assert Lead.objects.count() == 0
    page.get_by_role("button", name="Import 3 rows").click()

    # The task runs when the start commits; the progress fragment's next poll shows the result.
    created = page.locator("#result .import-counts .tile").first
    expect(created).to_have_text(re.compile(r"^\s*2\s*created\s*$"), timeout=10_000)
    expect(page.locator("#rejected")).to_contain_text("not a whole number")
    assert ImportJob.objects.get().status == "done" and Lead.objects.count() == 2
    expect(page.locator("#result")).to_contain_text(re.compile(r"3 of 3 rows handled in \d"))

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download rejected rows (CSV)").click()
    download = download_info.value
    assert download.suggested_filename == "webinar-leads-rejected.csv"
    with open(download.path(), encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["E-mail", "First Name", "Employees", "errors"]
    assert rows[1][:3] == ["nope", "Bad", "many"]

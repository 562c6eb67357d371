"""The CSV import pages: upload, map, dry run, start, progress, result, downloads."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from leads import import_services
from leads.importing import NOTICES_KEPT, ImportOptions
from leads.models import Account, ImportJob, Lead
from tests.factories import make_account
from tests.import_support import csv_bytes, media_root, tasks_inline  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

HTMX = {"HX-Request": "true"}
LEADS_CSV = csv_bytes(
    ["E-mail", "First Name", "Employees", "Notes"],
    [
        ["ada@acme.io", "Ada", "120", "=cmd|' /C calc'!A0"],
        ["not an email", "Bad", "many", "+bad"],
        ["bob@acme.io", "Bob", "", ""],
    ],
)


def upload_file(data=LEADS_CSV, name="people.csv"):
    return SimpleUploadedFile(name, data, content_type="text/csv")


def job_for(user, data=LEADS_CSV, kind="leads") -> ImportJob:
    return import_services.import_job_create(kind=kind, uploaded_file=upload_file(data), actor=user)


def test_the_list_shows_past_imports_and_the_upload_form(client_for, marketer):
    job_for(marketer)
    response = client_for(marketer).get(reverse("leads:import_list"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "people.csv" in body and "Uploaded: map the columns" in body
    assert 'id="upload-form"' in body and 'enctype="multipart/form-data"' in body
    assert f'action="{reverse("leads:import_list")}"' in body  # works without JS too
    assert "Opportunities" in body and "Rows match existing deals by external id." in body


def test_a_rep_reads_imports_but_is_told_they_cannot_import(client_for, rep, marketer):
    job = job_for(marketer)
    client = client_for(rep)
    body = client.get(reverse("leads:import_list")).content.decode()
    assert 'id="upload-form"' not in body
    assert "Only Marketing and RevOps admins can import" in body
    detail = client.get(job.get_absolute_url()).content.decode()
    assert "Only Marketing and RevOps admins can map and start imports." in detail
    assert reverse("leads:import_map", args=[job.pk]) not in detail


@pytest.mark.parametrize("url_name", ["import_list", "import_map", "import_start"])
def test_a_rep_gets_403_on_every_write(client_for, rep, marketer, url_name):
    job = job_for(marketer)
    args = [] if url_name == "import_list" else [job.pk]
    response = client_for(rep).post(
        reverse(f"leads:{url_name}", args=args), {"kind": "leads", "file": upload_file()}
    )
    assert response.status_code == 403
    assert "Only Marketing and RevOps admins can import CSV files." in response.content.decode()
    assert ImportJob.objects.count() == 1


def test_revops_admins_may_import(client_for, revops):
    response = client_for(revops).post(
        reverse("leads:import_list"), {"kind": "leads", "file": upload_file()}
    )
    assert response.status_code == 302


def test_a_bad_file_is_refused_in_place_with_htmx_and_without(client_for, marketer):
    client = client_for(marketer)
    png = SimpleUploadedFile("photo.png", bytes.fromhex("89504e470d0a1a0a0000000d49484452"))
    response = client.post(
        reverse("leads:import_list"), {"kind": "leads", "file": png}, headers=HTMX
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and 'id="upload-form"' in body
    assert "This file is a PNG image, not a CSV text file." in body
    assert "HX-Request" in response["Vary"]
    png.seek(0)
    page = client.post(reverse("leads:import_list"), {"kind": "leads", "file": png})
    assert page.status_code == 200 and "<html" in page.content.decode()
    assert "PNG image" in page.content.decode()
    assert not ImportJob.objects.exists()


def test_an_htmx_upload_redirects_the_browser_to_the_job(client_for, marketer):
    response = client_for(marketer).post(
        reverse("leads:import_list"), {"kind": "leads", "file": upload_file()}, headers=HTMX
    )
    job = ImportJob.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == job.get_absolute_url()


def test_uploading_a_file_that_is_being_imported_links_to_the_running_job(client_for, marketer):
    running = job_for(marketer)
    ImportJob.objects.filter(pk=running.pk).update(status="running")
    response = client_for(marketer).post(
        reverse("leads:import_list"), {"kind": "leads", "file": upload_file()}, headers=HTMX
    )
    body = response.content.decode()
    assert "already being imported" in body
    assert f'href="{running.get_absolute_url()}"' in body
    assert ImportJob.objects.count() == 1


@pytest.mark.usefixtures("tasks_inline")
def test_full_flow_upload_map_preview_start_result_and_rejected_csv(
    client_for, marketer, django_capture_on_commit_callbacks
):
    client = client_for(marketer)
    response = client.post(reverse("leads:import_list"), {"kind": "leads", "file": upload_file()})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()

    # The mapping form: suggestions pre-selected, required fields marked, samples shown.
    page = client.get(job.get_absolute_url()).content.decode()
    assert '<option value="E-mail" selected>' in page
    assert '<option value="First Name" selected>' in page
    assert 'class="required-mark"' in page
    assert "ada@acme.io" in page and "(e.g. ada@acme.io, not an email, bob@acme.io)" in page
    assert f'hx-post="{reverse("leads:import_map", args=[job.pk])}"' in page
    assert f'action="{reverse("leads:import_map", args=[job.pk])}"' in page
    assert "checks all 3 rows" in page

    # Map and dry-run (htmx): the status fragment with the preview.
    mapping = {"map_email": "E-mail", "map_first_name": "First Name", "map_employees": "Employees"}
    response = client.post(reverse("leads:import_map", args=[job.pk]), mapping, headers=HTMX)
    fragment = response.content.decode()
    assert response.status_code == 200 and "<html" not in fragment
    assert 'id="job-status"' in fragment and "hx-trigger" not in fragment
    assert "Checked <strong>all 3 rows</strong>" in fragment
    assert "would be created" in fragment and "not a valid email address" in fragment
    job.refresh_from_db()
    assert (job.status, job.created_count, job.error_count) == ("previewed", 2, 1)
    assert not Lead.objects.exists()

    # Start (htmx): the task runs inline after commit; the fragment polls while queued.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("leads:import_start", args=[job.pk]), headers=HTMX)
    fragment = response.content.decode()
    assert 'hx-trigger="every 1s"' in fragment and "<progress" in fragment
    assert f'hx-get="{job.get_absolute_url()}"' in fragment
    for callback in callbacks:
        callback()

    # Polling now returns the result, without a trigger: polling stops.
    response = client.get(job.get_absolute_url(), headers=HTMX)
    fragment = response.content.decode()
    assert "<html" not in fragment and "hx-trigger" not in fragment
    assert "Result" in fragment and "Rejected rows" in fragment
    assert "HX-Request" in response["Vary"]
    job.refresh_from_db()
    assert (job.status, job.created_count, job.error_count) == ("done", 2, 1)
    assert sorted(Lead.objects.values_list("email", flat=True)) == ["ada@acme.io", "bob@acme.io"]

    # The full result page, and the rejected rows as CSV to fix and upload again.
    page = client.get(job.get_absolute_url()).content.decode()
    assert "<html" in page and "Download rejected rows (CSV)" in page
    assert "line 3" in page  # row 2 is the file's third line
    response = client.get(reverse("leads:import_rejected_csv", args=[job.pk]))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="people-rejected.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["E-mail", "First Name", "Employees", "Notes", "errors"]
    assert rows[1][:4] == ["not an email", "Bad", "many", "'+bad"]  # formula neutralised
    assert "Email: “not an email” is not a valid email address." in rows[1][4]
    assert "Employees: “many” is not a whole number." in rows[1][4]
    assert len(rows) == 2


@pytest.mark.usefixtures("tasks_inline")
def test_the_full_flow_without_javascript(client_for, marketer, django_capture_on_commit_callbacks):
    client = client_for(marketer)
    job = job_for(marketer)
    response = client.post(reverse("leads:import_map", args=[job.pk]), {"map_email": "E-mail"})
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    page = client.get(job.get_absolute_url()).content.decode()
    assert f'action="{reverse("leads:import_start", args=[job.pk])}"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("leads:import_start", args=[job.pk]))
    assert response.status_code == 302
    page = client.get(job.get_absolute_url()).content.decode()
    assert "Result" in page and 'hx-trigger="every 1s"' not in page
    assert Lead.objects.count() == 2


def test_a_missing_required_column_is_shown_beside_the_field(client_for, marketer):
    job = job_for(marketer)
    response = client_for(marketer).post(
        reverse("leads:import_map", args=[job.pk]), {"map_first_name": "First Name"}, headers=HTMX
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "Choose the column that holds Email." in body
    job.refresh_from_db()
    assert job.status == "uploaded"


def test_a_bad_stage_mapping_option_is_shown_in_place(client_for, marketer):
    data = csv_bytes(["id", "stage"], [["1", "Pitching"]])
    job = job_for(marketer, data, kind="opportunities")
    page = client_for(marketer).get(job.get_absolute_url()).content.decode()
    assert "Create missing accounts" in page and "Prospecting = discovery" in page
    response = client_for(marketer).post(
        reverse("leads:import_map", args=[job.pk]),
        {"map_external_id": "id", "map_stage": "stage", "stage_mapping": "Pitching = pitched"},
        headers=HTMX,
    )
    assert "must be one of" in response.content.decode()
    response = client_for(marketer).post(
        reverse("leads:import_map", args=[job.pk]),
        {"map_external_id": "id", "map_stage": "stage", "stage_mapping": "Pitching = demo"},
        headers=HTMX,
    )
    job.refresh_from_db()
    assert job.status == "previewed" and job.created_count == 1 and job.error_count == 0
    assert import_services.job_options(job).stage_mapping == {"Pitching": "demo"}
    assert import_services.job_options(job).create_missing_accounts is False  # unticked


def test_the_progress_fragment_polls_while_running(client_for, rep, marketer):
    job = job_for(marketer)
    job = import_services.import_job_map(
        job=job, mapping={"email": "E-mail"}, options=ImportOptions(), actor=marketer
    )
    ImportJob.objects.filter(pk=job.pk).update(status="running", processed_rows=2)
    client = client_for(rep)  # anyone may watch
    fragment = client.get(job.get_absolute_url(), headers=HTMX).content.decode()
    assert 'hx-trigger="every 1s"' in fragment and 'value="67"' in fragment
    assert "2 of 3 rows" in fragment
    page = client.get(job.get_absolute_url()).content.decode()
    assert "<html" in page and 'hx-trigger="every 1s"' in page
    assert f'<a href="{job.get_absolute_url()}">Refresh</a>' in page


def test_starting_twice_shows_a_message_not_an_error(
    client_for, marketer, django_capture_on_commit_callbacks
):
    job = job_for(marketer)
    import_services.import_job_map(
        job=job, mapping={"email": "E-mail"}, options=ImportOptions(), actor=marketer
    )
    client = client_for(marketer)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(reverse("leads:import_start", args=[job.pk]), headers=HTMX)
        response = client.post(reverse("leads:import_start", args=[job.pk]), headers=HTMX)
    assert len(callbacks) == 1  # enqueued once (not sent: this test has no worker)
    assert response.status_code == 200
    assert "This import is already queued." in response.content.decode()


def test_the_column_template_downloads(client_for, marketer):
    response = client_for(marketer).get(
        reverse("leads:import_template_csv", args=["opportunities"])
    )
    assert response.status_code == 200
    header = response.content.decode("utf-8-sig").strip()
    assert header.startswith("external_id,name,account,account_domain,owner,product,stage")
    missing = client_for(marketer).get(reverse("leads:import_template_csv", args=["widgets"]))
    assert missing.status_code == 404


def test_the_job_list_query_count_does_not_grow_with_jobs(
    client_for, marketer, django_assert_max_num_queries
):
    for n in range(3):
        job_for(marketer, csv_bytes(["email"], [[f"p{n}@x.io"]]))
    client = client_for(marketer)
    client.get(reverse("leads:import_list"))  # warm the session
    with django_assert_max_num_queries(8):
        client.get(reverse("leads:import_list"))
    for n in range(3, 12):
        job_for(marketer, csv_bytes(["email"], [[f"p{n}@x.io"]]))
    with django_assert_max_num_queries(8):
        client.get(reverse("leads:import_list"))


@pytest.mark.usefixtures("tasks_inline")
def test_new_accounts_like_existing_ones_are_noted_but_not_rejected(
    client_for, marketer, django_capture_on_commit_callbacks
):
    acme = make_account(name="Acme Corporation", domain="acme.com")
    data = csv_bytes(
        ["Account", "Website"],
        [["ACME Inc.", "acme.co.uk"], ["Hooli", "gmail.com"], ["Initech", ""], ["Initech Ltd", ""]],
    )
    client = client_for(marketer)
    job = job_for(marketer, data, kind="accounts")
    mapping = {"map_name": "Account", "map_domain": "Website"}
    fragment = client.post(
        reverse("leads:import_map", args=[job.pk]), mapping, headers=HTMX
    ).content.decode()
    assert "Rows that would create an account like another" in fragment
    assert "(the first" not in fragment  # all of them are shown
    assert f'<a href="{acme.get_absolute_url()}">Acme Corporation</a>' in fragment
    assert "give this row its domain acme.com" in fragment
    assert "row 3 of this file" in fragment and "line 5" in fragment
    job.refresh_from_db()
    assert (job.created_count, job.error_count, job.notice_count) == (3, 1, 2)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("leads:import_start", args=[job.pk]))
    job.refresh_from_db()
    assert (job.status, job.created_count, job.error_count, job.notice_count) == ("done", 3, 1, 2)
    assert [n["row_number"] for n in job.notices] == [1, 4]
    page = client.get(job.get_absolute_url()).content.decode()
    assert "New accounts like others" in page and "These rows were imported." in page
    assert f'<a href="{acme.get_absolute_url()}">Acme Corporation</a>' in page
    # Row 4's look-alike is the account row 3 created: linked, now that it exists.
    initech = Account.objects.get(name="Initech")
    assert f'<a href="{initech.get_absolute_url()}">Initech</a>' in page
    assert job.notices[1]["lookalikes"] == [
        {"name": "Initech", "domain": "", "id": initech.pk, "row_number": 3}
    ]

    # Only the rejected row is in the rejected rows' CSV: notices are not rejections.
    response = client.get(reverse("leads:import_rejected_csv", args=[job.pk]))
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [row[0] for row in rows] == ["Account", "Hooli"]


def test_the_dry_run_shows_how_many_notices_it_did_not_keep(client_for, marketer):
    make_account(name="Acme", domain="acme.com")
    rows = [["Acme Inc", f"acme{i}.io"] for i in range(NOTICES_KEPT + 30)]
    job = job_for(marketer, csv_bytes(["name", "domain"], rows), kind="accounts")
    job = import_services.import_job_map(
        job=job, mapping={"name": "name", "domain": "domain"}, options=ImportOptions(),
        actor=marketer,
    )  # fmt: skip
    assert (job.notice_count, len(job.notices)) == (NOTICES_KEPT + 30, NOTICES_KEPT)
    page = client_for(marketer).get(job.get_absolute_url()).content.decode()
    assert f"(the first {NOTICES_KEPT} of {NOTICES_KEPT + 30})" in page
    assert page.count('<td class="small">If it is the same company') == NOTICES_KEPT

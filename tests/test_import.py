"""The CSV import engine (leads.importing) and the import job services."""

import codecs
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.models import Count, Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads import import_services
from leads.csv_safety import csv_safe_cell
from leads.importing import (
    BATCH_SIZE,
    NOTICES_KEPT,
    ImportFileError,
    ImportMappingError,
    ImportOptions,
    csv_open,
    csv_sample,
    mapping_suggest,
    rejected_rows_write,
    rows_import,
)
from leads.models import (
    Account,
    ImportJob,
    ImportRowError,
    Lead,
    LeadStage,
    LeadStageChange,
    Opportunity,
    OpportunityStage,
    OpportunityStageChange,
    Segment,
    Touchpoint,
)
from tests.factories import make_account, make_asset, make_campaign, make_lead
from tests.import_support import (
    MAVEN_DIR,
    WritesCaptured,
    csv_bytes,
    maven_people_and_products,  # noqa: F401 (a fixture)
    media_root,  # noqa: F401 (a fixture)
)

pytestmark = pytest.mark.django_db


def run(kind, data: bytes, mapping=None, **kwargs):
    table = csv_open(data)
    mapping = mapping if mapping is not None else mapping_suggest(kind, table.headers)
    return rows_import(kind=kind, rows=table.rows(), mapping=mapping, **kwargs)


def reasons(result) -> dict[int, dict]:
    return {error.row_number: error.errors for error in result.errors}


# --- Reading files -------------------------------------------------------------------


def test_csv_open_reads_the_sample_file():
    table = csv_open(MAVEN_DIR / "accounts.csv")
    assert table.headers[:3] == ["account", "sector", "year_established"]
    assert (table.encoding, table.delimiter, table.row_count) == ("utf-8", ",", 85)
    first = next(table.rows())
    assert first["account"] == "Acme Corporation" and first["sector"] == "technolgy"


@pytest.mark.parametrize(
    ("data", "encoding", "delimiter"),
    [
        (codecs.BOM_UTF8 + "email;name\r\na@x.io;Zoë\r\n".encode(), "utf-8-sig", ";"),
        ("email\tname\na@x.io\tCafé\n".encode("cp1252"), "cp1252", "\t"),
        ("email,name\na@x.io,Zoë\n".encode("utf-16"), "utf-16", ","),
        (b"email|name\na@x.io|Bo\n", "utf-8", "|"),
    ],
)
def test_csv_open_detects_encoding_and_delimiter(data, encoding, delimiter):
    table = csv_open(data)
    assert (table.encoding, table.delimiter) == (encoding, delimiter)
    assert table.headers == ["email", "name"]
    assert next(table.rows())["email"] == "a@x.io"
    assert next(table.rows())["name"] in {"Zoë", "Café", "Bo"}


def test_csv_open_counts_rows_but_not_trailing_blank_lines():
    table = csv_open(b"email,name\na@x.io,A\n,\nb@x.io,B\n\n,\n\n")
    assert table.row_count == 3  # the blank row between two rows keeps row numbers true
    assert [row["email"] for row in table.rows()] == ["a@x.io", "", "b@x.io"]


PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (PNG, "PNG image"),
        (b"PK\x03\x04" + b"\x00" * 40, "Excel workbook"),
        ("email,name\na@x.io,Zoë\n".encode("utf-16-le"), "NUL bytes"),
        (bytes(range(256)) * 4, "binary data"),
        (b"\x81\x8d\x8f\x90\x9d" * 20 + b"\n,,\n", "cannot read the file's text"),
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"email,name\n", "no data rows"),
        (b"email,Email\na,b\n", "twice"),
        (b"Dear team, here is the list\nthanks, it is, attached, below\nbye\n", "CSV table"),
    ],
)
def test_csv_open_refuses_what_is_not_a_csv(data, message):
    with pytest.raises(ImportFileError, match=message):
        csv_open(data)


def test_csv_open_refuses_a_file_over_the_size_limit(settings):
    settings.IMPORT_MAX_BYTES = 100
    with pytest.raises(ImportFileError, match=r"limited to|larger than"):
        csv_open(b"email\n" + b"someone@example.com\n" * 10)
    upload = SimpleUploadedFile("big.csv", b"email\n" + b"someone@example.com\n" * 10)
    with pytest.raises(ImportFileError, match="limited to"):
        csv_open(upload)


def test_csv_open_refuses_too_many_rows(settings):
    settings.IMPORT_MAX_ROWS = 3
    with pytest.raises(ImportFileError, match="more than 3 rows"):
        csv_open(b"email\na\nb\nc\nd\n")


def test_csv_sample_reads_only_the_head_of_the_file():
    data = csv_bytes(["email", "n"], [[f"p{i}@x.io", "é" * 50] for i in range(5000)])
    assert len(data) > 65536
    rows = csv_sample(data, rows=2)
    assert [r["email"] for r in rows] == ["p0@x.io", "p1@x.io"]


# --- Mapping suggestions -------------------------------------------------------------


def test_mapping_suggest_for_the_sample_files():
    accounts = csv_open(MAVEN_DIR / "accounts.csv").headers
    assert mapping_suggest("accounts", accounts) == {
        "name": "account",
        "industry": "sector",
        "employees": "employees",
        "annual_revenue": "revenue",
        "country": "office_location",
        "year_established": "year_established",
        "parent": "subsidiary_of",
    }
    pipeline = csv_open(MAVEN_DIR / "sales_pipeline.csv").headers
    assert mapping_suggest("opportunities", pipeline) == {
        "external_id": "opportunity_id",
        "owner": "sales_agent",
        "product": "product",
        "account": "account",
        "stage": "deal_stage",
        "created_at": "engage_date",
        "closed_on": "close_date",
        "amount": "close_value",
    }


def test_mapping_suggest_matches_synonyms_and_headers_containing_them():
    headers = ["E-mail Address", "First Name", "Surname", "Company Website", "Lead Source",
               "Employee Count", "Notes"]  # fmt: skip
    assert mapping_suggest("leads", headers) == {
        "email": "E-mail Address",
        "first_name": "First Name",
        "last_name": "Surname",
        "company_domain": "Company Website",
        "source_channel": "Lead Source",
        "employees": "Employee Count",
    }
    assert mapping_suggest("touchpoints", ["Event ID", "Contact Email", "Event Type", "Timestamp"])[
        "email"
    ] == ("Contact Email")


def test_a_mapping_without_a_required_field_is_refused():
    with pytest.raises(ImportMappingError) as caught:
        rows_import(kind="leads", rows=[], mapping={"first_name": "First"})
    assert "email" in caught.value.errors
    with pytest.raises(ImportMappingError, match="no column"):
        rows_import(kind="leads", rows=[{"Email": "a@x.io"}], mapping={"email": "E-mail"})


# --- Accounts --------------------------------------------------------------------------


def test_accounts_csv_imports_85_accounts_with_parents_and_industries_as_given():
    result = run("accounts", (MAVEN_DIR / "accounts.csv").read_bytes())
    assert (result.created, result.updated, result.unchanged, result.errors) == (85, 0, 0, [])
    assert Account.objects.count() == 85
    acme = Account.objects.get(name="Acme Corporation")
    # The sample's misspelt sector is data: kept as given unless an alias says otherwise.
    assert acme.industry == "technolgy"
    assert (acme.employees, acme.annual_revenue, acme.year_established) == (
        2822,
        Decimal("1100.04"),
        1996,
    )
    assert acme.country == "United States" and acme.segment == Segment.ENTERPRISE
    assert acme.subsidiaries.count() == 4
    assert Account.objects.filter(parent__isnull=False).count() == 15


def test_importing_accounts_again_changes_nothing_and_writes_nothing():
    data = (MAVEN_DIR / "accounts.csv").read_bytes()
    run("accounts", data)
    with WritesCaptured() as queries:
        result = run("accounts", data)
    assert (result.created, result.updated, result.unchanged, result.errors) == (0, 0, 85, [])
    assert queries.writes == []


def test_industry_aliases_option_corrects_misspellings():
    run(
        "accounts",
        (MAVEN_DIR / "accounts.csv").read_bytes(),
        options=ImportOptions(industry_aliases={"Technolgy": "technology"}),
    )
    assert Account.objects.filter(industry="technolgy").count() == 0
    assert Account.objects.filter(industry="technology").count() == 12


def test_accounts_match_by_external_id_then_domain_then_name():
    by_domain = make_account(name="Old Name", domain="acme.io", external_id="")
    by_name = make_account(name="Globex", domain="")
    by_external = make_account(name="Initech", domain="initech.io", external_id="A-7")
    data = csv_bytes(
        ["name", "domain", "external_id", "employees", "technologies"],
        [
            ["Acme", "https://www.ACME.io/about", "", "150", "Salesforce; HubSpot;Salesforce"],
            ["GLOBEX", "globex.com", "", "", ""],
            ["Initech Inc", "", "A-7", "5000", ""],
            ["Hooli", "hooli.xyz", "", "", ""],
        ],
    )
    result = run("accounts", data)
    assert (result.created, result.updated, result.unchanged) == (1, 3, 0)
    by_domain.refresh_from_db()
    assert (by_domain.name, by_domain.employees, by_domain.segment) == ("Acme", 150, "smb")
    assert by_domain.technologies == ["Salesforce", "HubSpot"]
    by_name.refresh_from_db()
    assert (by_name.name, by_name.domain) == ("GLOBEX", "globex.com")
    by_external.refresh_from_db()
    assert by_external.segment == Segment.ENTERPRISE
    assert Account.objects.get(domain="hooli.xyz").name_key == "hooli"


def test_an_account_row_the_database_refuses_does_not_block_the_others():
    make_account(name="Taken", domain="taken.io")
    make_account(name="Mine", domain="mine.io", external_id="M-1")
    data = csv_bytes(
        ["name", "domain", "external_id"],
        [["Good One", "good.io", ""], ["Mine", "taken.io", "M-1"], ["Good Two", "", ""]],
    )
    result = run("accounts", data)
    assert (result.created, result.updated) == (2, 0)
    assert reasons(result) == {2: {"domain": ["Another account already has this domain."]}}
    assert Account.objects.filter(name__in=["Good One", "Good Two"]).count() == 2


PUBLIC_DOMAIN_ERROR = (
    "“{}” is a public mail domain, shared by people at every company; an account cannot have "
    "it. Leave it empty or give the company's own domain."
)


def test_an_account_row_with_a_public_mail_domain_is_rejected_with_a_clear_error():
    data = csv_bytes(
        ["name", "domain"], [["Freelancers", "https://www.Gmail.com"], ["Hooli", "hooli.xyz"]]
    )
    result = run("accounts", data)
    assert result.created == 1
    assert reasons(result) == {1: {"domain": [PUBLIC_DOMAIN_ERROR.format("https://www.Gmail.com")]}}
    assert not Account.objects.filter(name="Freelancers").exists()


def test_a_deal_row_naming_its_account_by_a_public_mail_domain_is_rejected():
    data = csv_bytes(
        ["id", "account", "account_domain", "stage"],
        [["P1", "Solo", "yahoo.com", "discovery"], ["P2", "Solo", "", "discovery"]],
    )
    mapping = {"external_id": "id", "account": "account", "account_domain": "account_domain",
               "stage": "stage"}  # fmt: skip
    result = run("opportunities", data, mapping)
    assert result.created == 1
    assert reasons(result) == {1: {"account_domain": [PUBLIC_DOMAIN_ERROR.format("yahoo.com")]}}
    assert Account.objects.get(name="Solo").domain == ""


def test_a_lead_rows_public_company_domain_counts_as_none():
    acme = make_account(name="Acme", domain="acme.io")
    known = make_lead(email="kim@kim-consulting.io", company_domain="kim-consulting.io")
    data = csv_bytes(
        ["email", "company_domain"],
        [["jo@acme.io", "gmail.com"], ["al@hotmail.com", "www.Hotmail.com"],
         ["kim@kim-consulting.io", "gmail.com"]],
    )  # fmt: skip
    result = run("leads", data)
    assert (result.created, result.updated, result.unchanged, result.errors) == (2, 0, 1, [])
    jo = Lead.objects.get(email="jo@acme.io")
    assert (jo.company_domain, jo.account) == ("acme.io", acme)  # the email's domain decides
    al = Lead.objects.get(email="al@hotmail.com")
    assert (al.company_domain, al.account) == ("", None)
    known.refresh_from_db()
    assert known.company_domain == "kim-consulting.io"  # like a blank cell: erases nothing


def test_an_unknown_parent_rejects_the_row_but_keeps_the_account():
    data = csv_bytes(["name", "parent"], [["Child", "Nobody Inc"], ["Solo", ""]])
    result = run("accounts", data)
    assert result.created == 1 and len(result.errors) == 1
    assert "No account named “Nobody Inc”" in result.errors[0].errors["parent"][0]
    assert Account.objects.get(name="Child").parent is None


# --- Opportunities (the sample pipeline) ------------------------------------------------


@pytest.mark.usefixtures("maven_people_and_products")
def test_sales_pipeline_imports_all_8800_deals_matching_the_csv():
    run("accounts", (MAVEN_DIR / "accounts.csv").read_bytes())
    result = run("opportunities", (MAVEN_DIR / "sales_pipeline.csv").read_bytes())
    assert (result.created, result.updated, result.unchanged, result.errors) == (8800, 0, 0, [])
    by_stage = dict(Opportunity.objects.values_list("stage").annotate(n=Count("id")))
    # Won 4238, Lost 2473, Engaging 1589, Prospecting 500 in the CSV.
    assert by_stage == {"won": 4238, "lost": 2473, "demo": 1589, "discovery": 500}
    won = Opportunity.objects.filter(stage=OpportunityStage.WON).aggregate(total=Sum("amount"))
    assert won["total"] == Decimal("10005534")
    assert Opportunity.objects.filter(account=None).count() == 1425  # open deals without one
    assert Account.objects.count() == 85  # every named account existed
    assert OpportunityStageChange.objects.filter(note="Imported").count() == 8800
    # "GTXPro" in the pipeline is the product "GTX Pro".
    assert Opportunity.objects.filter(product__name="GTX Pro").count() == 1480
    deal = Opportunity.objects.select_related("owner", "product", "account").get(
        external_id="1C1I7A6R"
    )
    assert deal.owner.get_full_name() == "Moses Frase"
    assert (deal.product.name, deal.account.name, deal.amount) == (
        "GTX Plus Basic",
        "Cancity",
        Decimal("1054"),
    )
    assert deal.closed_on == date(2017, 3, 1)
    assert timezone.localdate(deal.created_at) == date(2016, 10, 20)
    assert timezone.localdate(deal.stage_changed_at) == date(2017, 3, 1)


@pytest.mark.usefixtures("maven_people_and_products")
def test_importing_the_pipeline_again_changes_nothing_and_writes_nothing():
    data = (MAVEN_DIR / "sales_pipeline.csv").read_bytes()
    first = run("opportunities", data)
    assert first.created == 8800
    assert Account.objects.count() == 85  # created on the way: missing accounts option is on
    with WritesCaptured() as queries:
        second = run("opportunities", data)
    assert (second.created, second.updated, second.unchanged, second.errors) == (0, 0, 8800, [])
    assert queries.writes == []


@pytest.mark.usefixtures("maven_people_and_products")
def test_opportunity_rows_are_checked_and_bad_ones_reported():
    make_account(name="Known Co", domain="known.co")
    header = ["id", "account", "sales_agent", "product", "stage", "close_value", "close_date"]
    data = csv_bytes(
        header,
        [
            ["D1", "Known Co", "moses.frase", "gtx-basic", "Won", "$1,200.50", "2017-02-01"],
            ["D2", "Known Co", "Nobody Here", "GTX Basic", "Won", "10", "2017-02-01"],
            ["D3", "Known Co", "Moses Frase", "Widget", "Lost", "0", ""],
            ["D4", "New Co", "", "", "Pitching", "-5", ""],
            ["D5", "", "", "", "proposal", "", "2017-05-01"],
            ["D1", "Known Co", "", "", "won", "1", "2017-02-01"],
        ],
    )
    mapping = {
        "external_id": "id", "account": "account", "owner": "sales_agent", "product": "product",
        "stage": "stage", "amount": "close_value", "closed_on": "close_date",
    }  # fmt: skip
    result = run(
        "opportunities", data, mapping, options=ImportOptions(create_missing_accounts=False)
    )
    assert result.created == 2
    errors = reasons(result)
    assert set(errors) == {2, 3, 4, 6}
    assert errors[2] == {"owner": ["No user with the username or name “Nobody Here”."]}
    assert set(errors[3]) == {"product", "closed_on"}
    assert set(errors[4]) == {"stage", "amount"}
    assert "Pitching = discovery" in errors[4]["stage"][0]
    assert "same external id" in errors[6]["row"][0]
    d1 = Opportunity.objects.get(external_id="D1")
    assert d1.amount == Decimal("1200.50") and d1.product.name == "GTX Basic"
    d5 = Opportunity.objects.get(external_id="D5")
    # On an open deal a close date is the expected close date.
    assert (d5.account, d5.closed_on, d5.expected_close_on) == (None, None, date(2017, 5, 1))
    assert d5.name == "Deal D5"


def test_stage_mapping_option_and_missing_accounts():
    data = csv_bytes(
        ["id", "account", "stage"],
        [["X1", "Brand New Ltd", "Pitching"], ["X2", "brand new ltd", "Pitching"]],
    )
    mapping = {"external_id": "id", "account": "account", "stage": "stage"}
    refused = run(
        "opportunities",
        data,
        mapping,
        options=ImportOptions(create_missing_accounts=False, stage_mapping={"pitching": "demo"}),
    )
    assert refused.created == 0
    assert "creating missing accounts is off" in refused.errors[0].errors["account"][0]
    preview = run(
        "opportunities",
        data,
        mapping,
        dry_run=True,
        options=ImportOptions(stage_mapping={"Pitching": "demo"}),
    )
    assert preview.created == 2 and Account.objects.count() == 0
    result = run(
        "opportunities", data, mapping, options=ImportOptions(stage_mapping={"Pitching": "demo"})
    )
    assert result.created == 2
    account = Account.objects.get()
    assert account.name == "Brand New Ltd"
    assert set(Opportunity.objects.values_list("stage", "account")) == {("demo", account.pk)}
    with pytest.raises(ValueError, match="Stage mapping targets"):
        ImportOptions(stage_mapping={"Pitching": "pitched"})


def test_a_changed_stage_updates_the_deal_and_records_the_change():
    data = csv_bytes(["id", "stage"], [["S1", "discovery"]])
    run("opportunities", data)
    result = run(
        "opportunities",
        csv_bytes(["id", "stage", "close_date"], [["S1", "Closed Won", "2024-05-02"]]),
    )
    assert result.updated == 1
    deal = Opportunity.objects.get(external_id="S1")
    assert (deal.stage, deal.closed_on, deal.version) == ("won", date(2024, 5, 2), 2)
    assert list(deal.stage_changes.values_list("from_stage", "to_stage").order_by("id")) == [
        ("", "discovery"),
        ("discovery", "won"),
    ]


# --- Leads -------------------------------------------------------------------------------


LEAD_HEADER = ["Email", "First Name", "Last Name", "Company", "Website", "Employees",
               "Lead Source", "Campaign", "Created"]  # fmt: skip


def test_leads_import_creates_history_matches_accounts_and_reports_bad_rows():
    acme = make_account(name="Acme", domain="acme.io")
    campaign = make_campaign(name="Spring webinar")
    data = csv_bytes(
        LEAD_HEADER,
        [
            ["Jane@Acme.io", "Jane", "Doe", "Acme", "", "1200", "Webinar", "spring webinar", "2024-03-01"],
            ["joe@gmail.com", "Joe", "Bloggs", "Acme", "", "", "Paid search", "", ""],
            ["not-an-email", "Bad", "Row", "", "", "", "", "", ""],
            ["kim@beta.io", "Kim", "", "", "", "lots", "Carrier pigeon", "Nope", "2024-13-01"],
            ["", "", "", "", "", "", "", "", ""],
            ["JANE@acme.io", "Janet", "", "", "", "", "", "", ""],
            ["ann@gamma.io", "Ann", "", "Gamma", "gamma.io", "30", "", "", ""],
        ],
    )  # fmt: skip
    result = run("leads", data)
    assert (result.created, result.updated, result.unchanged) == (3, 0, 0)
    assert result.blank == 1 and result.rows == 7
    errors = reasons(result)
    assert set(errors) == {3, 4, 6}
    assert errors[3] == {"email": ["“not-an-email” is not a valid email address."]}
    assert set(errors[4]) == {"employees", "source_channel", "created_at"}
    assert "same email" in errors[6]["row"][0]
    jane = Lead.objects.get(email="jane@acme.io")
    assert jane.account == acme and jane.segment == Segment.ENTERPRISE
    assert (jane.source_channel, jane.source_campaign) == ("webinar", campaign)
    assert timezone.localdate(jane.created_at) == date(2024, 3, 1)
    assert jane.stage == LeadStage.NEW
    change = LeadStageChange.objects.get(lead=jane)
    assert (change.to_stage, change.note, change.changed_at) == ("new", "Imported", jane.created_at)
    joe = Lead.objects.get(email="joe@gmail.com")
    assert joe.account is None and joe.company_domain == ""  # public mail never matches
    assert Lead.objects.get(email="ann@gamma.io").company_domain == "gamma.io"


def test_a_lead_row_with_an_unknown_campaign_is_rejected():
    data = csv_bytes(["email", "campaign"], [["a@x.io", "Ghost campaign"], ["b@x.io", ""]])
    result = run("leads", data, {"email": "email", "source_campaign": "campaign"})
    assert result.created == 1
    assert reasons(result) == {1: {"source_campaign": ["No campaign named “Ghost campaign”."]}}


def test_leads_update_only_what_changed_and_blank_cells_erase_nothing():
    lead = make_lead(email="pat@delta.io", first_name="Pat", title="CTO", phone="123")
    data = csv_bytes(
        ["email", "first", "title", "phone"], [["PAT@delta.io", "Patricia", "", "123"]]
    )
    mapping = {"email": "email", "first_name": "first", "title": "title", "phone": "phone"}
    result = run("leads", data, mapping)
    assert (result.created, result.updated, result.unchanged) == (0, 1, 0)
    lead.refresh_from_db()
    assert (lead.first_name, lead.title, lead.phone) == ("Patricia", "CTO", "123")
    assert not LeadStageChange.objects.filter(lead=lead).exists()
    with WritesCaptured() as queries:
        again = run("leads", data, mapping)
    assert (again.updated, again.unchanged, queries.writes) == (0, 1, [])


def test_a_full_name_column_is_split_when_first_and_last_are_not_mapped():
    run("leads", csv_bytes(["email", "name"], [["m@x.io", "Mary Ann Smith"]]))
    assert Lead.objects.values_list("first_name", "last_name").get() == ("Mary", "Ann Smith")


def test_a_row_with_more_values_than_columns_is_rejected():
    result = run("leads", b"email,first_name\na@x.io,Al\nb@x.io,Bo,extra,stuff\n")
    assert result.created == 1
    assert "more value" in result.errors[0].errors["row"][0]


def test_a_dry_run_writes_nothing():
    data = csv_bytes(["email"], [[f"p{i}@x.io"] for i in range(20)])
    with WritesCaptured() as queries:
        result = run("leads", data, dry_run=True)
    assert result.created == 20 and result.dry_run
    assert queries.writes == [] and Lead.objects.count() == 0


def test_rows_are_written_in_batches_with_progress_per_batch():
    rows = [{"email": f"p{i}@x.io"} for i in range(BATCH_SIZE + 5)]
    batches = []
    result = rows_import(
        kind="leads", rows=rows, mapping={"email": "email"}, on_progress=batches.append
    )
    assert result.created == BATCH_SIZE + 5
    assert [b.rows for b in batches] == [BATCH_SIZE, 5]
    assert Lead.objects.count() == LeadStageChange.objects.count() == BATCH_SIZE + 5


def test_skip_rows_resumes_after_the_rows_already_imported():
    rows = [{"email": f"p{i}@x.io"} for i in range(10)]
    result = rows_import(kind="leads", rows=rows, mapping={"email": "email"}, skip_rows=6)
    assert (result.created, result.rows) == (4, 4)
    assert sorted(Lead.objects.values_list("email", flat=True)) == [
        f"p{i}@x.io" for i in range(6, 10)
    ]


# --- Touchpoints ---------------------------------------------------------------------------


def test_touchpoints_import_creates_missing_leads_and_is_idempotent():
    known = make_lead(email="known@acme.io")
    campaign = make_campaign(name="Retargeting", channel="paid_social")
    asset = make_asset(title="ROI guide")
    header = ["event_id", "email", "type", "timestamp", "campaign", "asset", "url"]
    data = csv_bytes(
        header,
        [
            ["e1", "known@acme.io", "Page view", "2024-05-01T10:00:00+02:00", "", "", "/pricing"],
            ["e2", "new@beta.io", "content_download", "2024-05-02 09:30", "retargeting", "ROI guide", ""],
            ["e3", "new@beta.io", "Demo request", "2024-05-01", "", "", ""],
            ["e4", "x@y.io", "Smoke signal", "yesterday", "Nope", "", ""],
        ],
    )  # fmt: skip
    result = run("touchpoints", data)
    assert (result.created, result.updated) == (3, 0)
    assert set(reasons(result)[4]) == {"type", "occurred_at"}
    new_lead = Lead.objects.get(email="new@beta.io")
    assert timezone.localdate(new_lead.created_at) == date(2024, 5, 1)  # its first touch
    assert LeadStageChange.objects.filter(lead=new_lead, note="Imported").count() == 1
    download = Touchpoint.objects.get(external_id="e2")
    assert (download.campaign, download.asset, download.channel) == (campaign, asset, "paid_social")
    assert (download.source, download.api_key) == ("import", None)
    assert Touchpoint.objects.get(external_id="e1").lead == known
    with WritesCaptured() as queries:
        again = run("touchpoints", data)
    assert (again.created, again.updated, again.unchanged, queries.writes) == (0, 0, 3, [])


def test_touchpoint_batches_announce_their_leads_after_commit(django_capture_on_commit_callbacks):
    from leads.signals import touchpoints_recorded

    received = []

    def receiver(sender, lead_ids, **kwargs):
        received.append(lead_ids)

    touchpoints_recorded.connect(receiver)
    try:
        data = csv_bytes(["id", "email", "type", "at"], [["t1", "a@x.io", "chat", "2024-01-02"]])
        mapping = {"external_id": "id", "email": "email", "type": "type", "occurred_at": "at"}
        with django_capture_on_commit_callbacks(execute=True):
            run("touchpoints", data, mapping)
            assert received == []  # not before the batch commits
        with django_capture_on_commit_callbacks(execute=True):
            run("touchpoints", data, mapping)  # unchanged: nothing to announce
    finally:
        touchpoints_recorded.disconnect(receiver)
    assert received == [frozenset({Lead.objects.get(email="a@x.io").pk})]


# --- Rejected rows as CSV ------------------------------------------------------------------


def test_csv_cells_are_neutralised_against_formula_injection():
    cells = ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\r=1+1", "ok", "a=b", None, -5, 0]
    assert [csv_safe_cell(v) for v in cells] == [
        "'=1+1", "'+1", "'-2", "'@SUM(A1)", "'\tx", "'\r=1+1", "ok", "a=b", "", -5, 0,
    ]  # fmt: skip
    result = run("leads", b"email,first_name\n=HYPERLINK(1),@evil\n")
    out = io.StringIO()
    rejected_rows_write(
        out, kind="leads", headers=["email", "first_name"], row_errors=result.errors
    )
    lines = out.getvalue().splitlines()
    assert lines[0] == "email,first_name,errors"
    assert lines[1].startswith("'=HYPERLINK(1),'@evil,Email: “=HYPERLINK(1)” is not a valid")


# --- Look-alike notices ------------------------------------------------------------------


def notices(result) -> dict[int, tuple[str, list[tuple], str]]:
    """{row: (new account, [(look-alike name, domain, id, row)], advice)}."""
    return {
        n.row_number: (
            n.name,
            [(like.name, like.domain, like.id, like.row_number) for like in n.lookalikes],
            n.advice,
        )
        for n in result.notices
    }


ACCOUNT_ROWS = [
    ["ACME Inc.", "acme.co.uk", ""],  # 1: like Acme Corporation, by name
    ["Globex Corp", "globex.io", ""],  # 2: like Globex (no domain, an external id)
    ["Initech", "initech.io", ""],  # 3: like nothing
    ["Acme Corporation", "", ""],  # 4: is Acme Corporation (unchanged)
    ["Initech, Inc", "initech.com", ""],  # 5: like row 3, by name
    ["Hooli", "hooli.xyz", "H-1"],  # 6: like nothing
    ["Hooli Search", "hooli.xyz", "H-2"],  # 7: like row 6, by domain
    ["Umbrella", "", ""],  # 8: like Umbrella Ltd (no domain, no external id)
]


def lookalike_accounts() -> dict[str, Account]:
    return {
        "acme": make_account(name="Acme Corporation", domain="acme.com"),
        "globex": make_account(name="Globex", domain="", external_id="G-1"),
        "umbrella": make_account(name="Umbrella Ltd", domain=""),
    }


def test_a_dry_run_notes_new_accounts_like_existing_ones_or_earlier_rows():
    accounts = lookalike_accounts()
    acme, globex, umbrella = accounts["acme"].pk, accounts["globex"].pk, accounts["umbrella"].pk
    data = csv_bytes(["name", "domain", "external_id"], ACCOUNT_ROWS)
    with WritesCaptured() as queries:
        result = run("accounts", data, dry_run=True)
    assert queries.writes == [] and Account.objects.count() == 3
    assert (result.created, result.unchanged, result.errors) == (7, 1, [])  # notices: no errors
    assert notices(result) == {
        1: ("ACME Inc.", [("Acme Corporation", "acme.com", acme, None)],
            "If it is the same company as “Acme Corporation”, give this row its domain "
            "acme.com so the import updates that account instead of creating another."),
        2: ("Globex Corp", [("Globex", "", globex, None)],
            "If it is the same company as “Globex”, give this row its external id G-1 so the "
            "import updates that account instead of creating another."),
        5: ("Initech, Inc", [("Initech", "initech.io", None, 3)],
            "If it is the same company as row 3's “Initech”, merge the two rows into one."),
        7: ("Hooli Search", [("Hooli", "hooli.xyz", None, 6)],
            "If it is the same company as row 6's “Hooli”, merge the two rows into one."),
        8: ("Umbrella", [("Umbrella Ltd", "", umbrella, None)],
            "If it is the same company as “Umbrella Ltd”, give this row its exact name "
            "“Umbrella Ltd” so the import updates that account instead of creating another."),
    }  # fmt: skip
    assert result.notice_count == 5
    assert result.notices[0].message == (
        "Creates the account “ACME Inc.”, which looks like “Acme Corporation” (acme.com). "
        + result.notices[0].advice
    )


def test_earlier_batches_of_a_dry_run_count_as_rows_of_the_file():
    rows = [{"name": "Initech", "domain": "initech.io"}, {"name": "INITECH Corp", "domain": ""}]
    result = rows_import(
        kind="accounts",
        rows=rows,
        mapping={"name": "name", "domain": "domain"},
        dry_run=True,
        batch_size=1,
    )
    assert result.created == 2
    assert notices(result)[2][1] == [("Initech", "initech.io", None, 1)]


def test_the_import_creates_the_rows_it_notes_and_notes_them_again():
    accounts = lookalike_accounts()
    rows = [row for row in ACCOUNT_ROWS if row[1] != "hooli.xyz"]  # 1-5 and Umbrella
    result = run("accounts", csv_bytes(["name", "domain", "external_id"], rows))
    assert (result.created, result.unchanged, result.errors) == (5, 1, [])
    assert set(Account.objects.values_list("name", flat=True)) == {
        "Acme Corporation", "ACME Inc.", "Globex", "Globex Corp", "Initech", "Initech, Inc",
        "Umbrella Ltd", "Umbrella",
    }  # fmt: skip
    assert {row: [like[0] for like in likes] for row, (_, likes, _) in notices(result).items()} == {
        1: ["Acme Corporation"],
        2: ["Globex"],
        5: ["Initech"],
        6: ["Umbrella Ltd"],
    }
    assert notices(result)[1][1][0][2] == accounts["acme"].pk


def test_an_import_keeps_the_first_notices_and_counts_them_all():
    make_account(name="Acme", domain="acme.com")
    rows = [["Acme Inc", f"acme{i}.io"] for i in range(NOTICES_KEPT + 30)]
    result = run("accounts", csv_bytes(["name", "domain"], rows), dry_run=True)
    assert result.created == NOTICES_KEPT + 30
    assert result.notice_count == NOTICES_KEPT + 30 and len(result.notices) == NOTICES_KEPT
    assert [n.row_number for n in result.notices] == list(range(1, NOTICES_KEPT + 1))
    # Acme in Accord first, then the earlier rows, three at most.
    assert [like.row_number for like in result.notices[5].lookalikes] == [None, 1, 2]


def test_deal_rows_creating_accounts_like_others_get_notices():
    acme = make_account(name="Acme Corporation", domain="acme.com")
    data = csv_bytes(
        ["id", "account", "account_domain", "stage"],
        [
            ["D1", "ACME Inc", "", "discovery"],  # like Acme Corporation
            ["D2", "Acme Corporation", "", "discovery"],  # is it
            ["D3", "Initech", "initech.io", "discovery"],  # new, like nothing
            ["D4", "Initech Holdings", "initech.io", "discovery"],  # the same domain: row 3's
            ["D5", "initech", "", "discovery"],  # the same name: row 3's
            ["D6", "INITECH LLC", "", "discovery"],  # like row 3's
        ],
    )
    mapping = {"external_id": "id", "account": "account", "account_domain": "account_domain",
               "stage": "stage"}  # fmt: skip
    preview = run("opportunities", data, mapping, dry_run=True)
    assert (preview.created, preview.errors, Account.objects.count()) == (6, [], 1)
    assert notices(preview) == {
        1: ("ACME Inc", [("Acme Corporation", "acme.com", acme.pk, None)],
            "If it is the same company as “Acme Corporation”, write the account as “Acme "
            "Corporation” (or give its domain acme.com) so the deal goes to that account "
            "instead."),
        6: ("INITECH LLC", [("Initech", "initech.io", None, 3)],
            "If it is the same company as row 3's “Initech”, write the account the same way "
            "in both rows."),
    }  # fmt: skip
    with WritesCaptured() as queries:
        result = run("opportunities", data, mapping)
    assert (result.created, result.errors) == (6, [])
    # Row 4 shares row 3's new account: no second one, refused by the database.
    assert not [q for q in queries.captured_queries if q["sql"].startswith("ROLLBACK TO")]
    assert sorted(notices(result)) == [1, 6]
    initech = Account.objects.get(domain="initech.io")
    assert set(Account.objects.values_list("name", flat=True)) == {
        "Acme Corporation",
        "ACME Inc",
        "Initech",
        "INITECH LLC",
    }
    assert set(
        Opportunity.objects.filter(external_id__in=["D3", "D4", "D5"]).values_list(
            "account", flat=True
        )
    ) == {initech.pk}


@pytest.mark.usefixtures("maven_people_and_products")
def test_a_rejected_deal_row_creates_no_account():
    data = csv_bytes(
        ["id", "account", "sales_agent", "stage"],
        [["D1", "Brand New Ltd", "Nobody Here", "discovery"], ["D2", "Other New", "", "demo"]],
    )
    mapping = {"external_id": "id", "account": "account", "owner": "sales_agent",
               "stage": "stage"}  # fmt: skip
    result = run("opportunities", data, mapping)
    assert result.created == 1 and set(reasons(result)) == {1}
    assert list(Account.objects.values_list("name", flat=True)) == ["Other New"]


@pytest.mark.parametrize("dry_run", [True, False])
def test_finding_look_alikes_takes_the_same_queries_for_more_rows(dry_run):
    """One batch, every row creating an account like one in Accord."""

    def queries(kind: str, rows: int) -> int:
        for i in range(rows):
            make_account(name=f"{kind} {rows}x{i}", domain="")
        if kind == "accounts":
            data = csv_bytes(["name"], [[f"{kind} {rows}x{i} Inc"] for i in range(rows)])
        else:
            data = csv_bytes(
                ["id", "account", "stage"],
                [[f"D{rows}x{i}", f"{kind} {rows}x{i} Inc", "demo"] for i in range(rows)],
            )
        with CaptureQueriesContext(connection) as captured:
            result = run(kind, data, dry_run=dry_run)
        assert result.created == result.notice_count == rows
        return len(captured)

    assert queries("accounts", 4) == queries("accounts", 40)
    assert queries("opportunities", 4) == queries("opportunities", 40)


# --- Job services --------------------------------------------------------------------------


def upload(data: bytes, name="people.csv"):
    return SimpleUploadedFile(name, data, content_type="text/csv")


@pytest.mark.usefixtures("media_root")
def test_import_job_create_stores_the_file_and_suggests_a_mapping(marketer):
    job = import_services.import_job_create(
        kind="leads",
        uploaded_file=upload(csv_bytes(LEAD_HEADER, [["a@x.io"] + [""] * 8])),
        actor=marketer,
    )
    assert (job.status, job.total_rows, job.headers) == ("uploaded", 1, LEAD_HEADER)
    assert import_services.job_columns(job)["email"] == "Email"
    assert import_services.job_options(job) == ImportOptions()
    assert job.file.read().startswith(b"Email,")


@pytest.mark.usefixtures("media_root")
@pytest.mark.parametrize("data", [PNG, "email\nä@x.io\n".encode("utf-16-le"), b"email\n" * 200])
def test_a_bad_upload_is_refused_and_nothing_is_written(marketer, settings, data):
    settings.IMPORT_MAX_BYTES = 1000
    with WritesCaptured() as queries, pytest.raises(ImportFileError):
        import_services.import_job_create(kind="leads", uploaded_file=upload(data), actor=marketer)
    assert queries.writes == []
    assert not ImportJob.objects.exists()
    media = settings.MEDIA_ROOT
    assert not media.exists() or not any(media.rglob("*.csv"))


@pytest.mark.usefixtures("media_root")
def test_only_importers_may_create_jobs(rep):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        import_services.import_job_create(
            kind="leads", uploaded_file=upload(b"email\na@x.io\n"), actor=rep
        )


@pytest.mark.usefixtures("media_root")
def test_job_runs_from_upload_to_done_with_rejected_rows(
    marketer, django_capture_on_commit_callbacks
):
    data = csv_bytes(["email", "employees"], [["a@x.io", "10"], ["bad", "x"], ["b@x.io", ""]])
    job = import_services.import_job_create(
        kind="leads", uploaded_file=upload(data), actor=marketer
    )
    job = import_services.import_job_map(
        job=job,
        mapping={"email": "email", "employees": "employees"},
        options=ImportOptions(),
        actor=marketer,
    )
    assert (job.status, job.created_count, job.error_count, job.processed_rows) == (
        "previewed",
        2,
        1,
        3,
    )
    assert Lead.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = import_services.import_job_start(job=job, actor=marketer)
    assert job.status == "queued" and len(callbacks) == 1
    assert not job.row_errors.exists()  # the preview's errors are cleared
    import_services.import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count, job.error_count) == ("done", 3, 2, 1)
    assert job.started_at and job.finished_at
    row_error = job.row_errors.get()
    assert row_error.row_number == 2 and row_error.values == {"email": "bad", "employees": "x"}
    assert set(row_error.errors) == {"email", "employees"}
    # A redelivered task finds the job done and leaves it alone.
    finished = ImportJob.objects.values().get(pk=job.pk)
    import_services.import_job_run(job_id=job.pk)
    assert ImportJob.objects.values().get(pk=job.pk) == finished
    assert Lead.objects.count() == 2 and ImportRowError.objects.count() == 1


@pytest.mark.usefixtures("media_root")
def test_an_interrupted_job_resumes_after_its_committed_rows(marketer):
    data = csv_bytes(["email"], [[f"p{i}@x.io"] for i in range(10)])
    job = import_services.import_job_create(
        kind="leads", uploaded_file=upload(data), actor=marketer
    )
    job = import_services.import_job_map(
        job=job, mapping={"email": "email"}, options=ImportOptions(), actor=marketer
    )
    # As if a worker died after committing the first 4 rows of a running job.
    rows_import(
        kind="leads", rows=[{"email": f"p{i}@x.io"} for i in range(4)], mapping={"email": "email"}
    )
    ImportJob.objects.filter(pk=job.pk).update(status="running", processed_rows=4, created_count=4)
    import_services.import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count, job.unchanged_count) == (
        "done",
        10,
        10,
        0,
    )
    assert Lead.objects.count() == 10


@pytest.mark.usefixtures("media_root")
def test_a_file_being_imported_cannot_be_imported_twice_at_once(marketer):
    data = csv_bytes(["email"], [["a@x.io"]])
    first = import_services.import_job_create(
        kind="leads", uploaded_file=upload(data), actor=marketer
    )
    ImportJob.objects.filter(pk=first.pk).update(status="running")
    with pytest.raises(import_services.ImportConflict) as caught:
        import_services.import_job_create(kind="leads", uploaded_file=upload(data), actor=marketer)
    assert caught.value.running == first
    # Another kind, or once the first is done, is fine.
    import_services.import_job_create(
        kind="touchpoints", uploaded_file=upload(data), actor=marketer
    )
    ImportJob.objects.filter(pk=first.pk).update(status="done")
    import_services.import_job_create(kind="leads", uploaded_file=upload(data), actor=marketer)


@pytest.mark.usefixtures("media_root")
def test_a_large_file_gets_a_dry_run_on_a_sample(marketer, monkeypatch):
    monkeypatch.setattr(import_services, "PREVIEW_ALL_ROWS_UP_TO", 10)
    monkeypatch.setattr(import_services, "PREVIEW_SAMPLE_ROWS", 4)
    data = csv_bytes(["email"], [[f"p{i}@x.io"] for i in range(11)])
    job = import_services.import_job_create(
        kind="leads", uploaded_file=upload(data), actor=marketer
    )
    job = import_services.import_job_map(
        job=job, mapping={"email": "email"}, options=ImportOptions(), actor=marketer
    )
    assert (job.processed_rows, job.total_rows, job.created_count) == (4, 11, 4)


@pytest.mark.usefixtures("media_root")
def test_a_job_fails_with_a_clear_message_when_its_file_is_gone(marketer):
    job = import_services.import_job_create(
        kind="leads", uploaded_file=upload(b"email\na@x.io\n"), actor=marketer
    )
    job = import_services.import_job_map(
        job=job, mapping={"email": "email"}, options=ImportOptions(), actor=marketer
    )
    job = import_services.import_job_start(job=job, actor=marketer)
    job.file.delete(save=False)
    import_services.import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "stopped unexpectedly" in job.failure
    assert not ImportRowError.objects.exists() and Lead.objects.count() == 0


@pytest.mark.usefixtures("media_root")
def test_an_import_job_keeps_the_first_notices_of_its_batches_and_counts_all(marketer):
    make_account(name="Acme", domain="acme.com")
    plain = BATCH_SIZE - 150  # then 150 rows like Acme in the first batch, 100 in the second
    rows = [[f"Firm {i}", ""] for i in range(plain)]
    rows += [["Acme Inc", f"acme{i}.io"] for i in range(250)]
    job = import_services.import_job_create(
        kind="accounts", uploaded_file=upload(csv_bytes(["name", "domain"], rows)), actor=marketer
    )
    job = import_services.import_job_map(
        job=job, mapping={"name": "name", "domain": "domain"}, options=ImportOptions(),
        actor=marketer,
    )  # fmt: skip
    assert (job.notice_count, len(job.notices)) == (250, NOTICES_KEPT)
    job = import_services.import_job_start(job=job, actor=marketer)
    assert (job.notice_count, job.notices) == (0, [])
    import_services.import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.created_count, job.error_count) == ("done", plain + 250, 0)
    assert (job.notice_count, len(job.notices)) == (250, NOTICES_KEPT)
    kept_rows = [notice["row_number"] for notice in job.notices]
    assert kept_rows == list(range(plain + 1, plain + NOTICES_KEPT + 1))  # 150, then 50 more
    assert job.notices[0]["lookalikes"][0]["name"] == "Acme"

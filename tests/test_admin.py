"""The Django admin as the configuration back office: every model registered,
each list searchable or filterable, big tables fast to page, system tables
read-only, and every page open to RevOps admins and to no one else."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from config import roles
from config.backoffice import SystemTableAdmin
from config.models import ServiceHeartbeat, SweepState
from leads import models as lead_models
from leads import services as lead_services
from leads.api_keys import api_key_create
from reporting import models as reporting_models
from reporting.rollups import reporting_rebuild
from sla import models as sla_models
from sla.scoring import leads_score, rescore_job_create
from tests.factories import (
    make_account,
    make_asset,
    make_campaign,
    make_competitor,
    make_lead,
    make_opportunity,
    make_team,
    make_touchpoint,
    reason,
)
from tests.sla_factories import make_icp, make_sla
from tests.winloss_factories import make_action_item, make_retrospective

PROJECT_APPS = ("config", "leads", "sla", "reporting")

# One-row tables: nothing to search or filter among.
SINGLETONS = {
    sla_models.RoutingSettings: "one row: the default owner routing falls back on",
    reporting_models.ReportingSettings: "one row: the CAC and LTV inputs",
    reporting_models.RefreshState: "one row: when the reporting tables were last refreshed",
}

# Tables that grow with leads, touches and deals (millions of rows in a
# production-sized database): their lists must not COUNT(*) the table.
BIG_TABLES = (
    lead_models.Lead,
    lead_models.Touchpoint,
    lead_models.Activity,
    lead_models.Opportunity,
    lead_models.LeadStageChange,
    lead_models.OpportunityStageChange,
    sla_models.ScoreEvaluation,
    reporting_models.AttributionPath,
    reporting_models.AttributionCredit,
    reporting_models.LeadFunnel,
)
# A form field choosing one of these must not render every row as an <option>.
BIG_CHOICES = (
    lead_models.Lead,
    lead_models.Touchpoint,
    lead_models.Opportunity,
    lead_models.Account,
    reporting_models.Retrospective,
)


def project_admins():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in PROJECT_APPS
    ]


def inline_models() -> set:
    return {
        inline.model
        for model_admin in admin.site._registry.values()
        for inline in model_admin.inlines
    }


def test_every_project_model_is_in_the_admin():
    inlined = inline_models()
    missing = [
        model._meta.label
        for app in PROJECT_APPS
        for model in apps.get_app_config(app).get_models()
        if not admin.site.is_registered(model) and model not in inlined
    ]
    assert not missing, f"models neither registered nor inline in the admin: {missing}"


def test_every_list_can_be_searched_or_filtered():
    bare = [
        model._meta.label
        for model, model_admin in project_admins()
        if model not in SINGLETONS and not (model_admin.search_fields or model_admin.list_filter)
    ]
    assert not bare, f"admin lists with neither search_fields nor list_filter: {bare}"


def test_big_tables_page_without_counting_every_row():
    counting = [
        model._meta.label
        for model in BIG_TABLES
        if admin.site.get_model_admin(model).show_full_result_count
    ]
    assert not counting, f"big admin lists that COUNT(*) the whole table: {counting}"


def test_choices_among_big_tables_are_raw_ids_or_autocompletes():
    """An editable form field pointing at a big table is a raw id or an
    autocomplete, never a <select> of every lead."""
    offenders = []
    for model, model_admin in project_admins():
        admins = [(model, model_admin, None)]
        admins += [(inline.model, inline, inline.fk_name) for inline in model_admin.inlines]
        for form_model, form_admin, parent_fk in admins:
            if isinstance(model_admin, SystemTableAdmin):
                continue  # no form: the rows are only viewed
            widgets = {
                *form_admin.raw_id_fields,
                *form_admin.autocomplete_fields,
                *form_admin.readonly_fields,
            }
            for field in form_model._meta.get_fields():
                if not (field.many_to_one or field.one_to_one) or not field.editable:
                    continue
                if field.related_model not in BIG_CHOICES or field.name in widgets:
                    continue
                if parent_fk == field.name or (
                    form_model is not model and field.related_model is model
                ):
                    continue  # an inline's key to its parent is set by the parent
                offenders.append(f"{form_model._meta.label}.{field.name}")
    assert not offenders, f"admin forms with a <select> over a big table: {offenders}"


def rows_add(*, n: int, make_user) -> dict:
    """One row (at least) in every table the admin shows, written mostly by
    the services that write them in production. Call again with another `n`
    for more of each (singletons excepted)."""
    now = timezone.now()
    rep = make_user(f"rep{n}", roles.SALES_REP)
    manager = make_user(f"manager{n}", roles.SALES_MANAGER)
    marketer = make_user(f"marketer{n}", roles.MARKETING)
    revops = make_user(f"revops{n}", roles.REVOPS_ADMIN)
    team = make_team(name=f"Team {n}", manager=manager, members=[rep])
    sla, _ = make_sla(), make_icp()
    account = make_account()
    campaign = make_campaign()
    lead_models.CampaignSpend.objects.create(campaign=campaign, month=date(2026, 1, 1), amount=500)
    asset = make_asset(campaign=campaign)
    product = lead_models.Product.objects.create(name=f"GTX {n}", series="GTX", list_price=4821)
    lead = make_lead(
        owner=rep, account=account, source_campaign=campaign, title="CIO", stage="mql",
        response_due_at=now - timedelta(hours=2),
    )  # fmt: skip
    make_touchpoint(lead, campaign=campaign, asset=asset, occurred_at=now - timedelta(days=3))
    leads_score([lead.pk])
    lead_services.lead_accept(lead=lead, actor=rep)
    lead_services.activity_log(actor=rep, kind="call", subject="Intro call", lead=lead)
    lead_services.lead_feedback_add(
        lead=lead, actor=rep, note="Uses a rival", competitor=make_competitor(f"Rival {n}")
    )
    deal = make_opportunity(
        owner=rep, account=account, source_lead=lead, product=product, stage="proposal"
    )
    lead_services.opportunity_move(
        opportunity=deal, actor=rep, to_stage="lost", loss_reason=reason("price")
    )
    job = lead_models.ImportJob.objects.create(
        kind="leads", original_name="people.csv", file="imports/people.csv",
        file_sha256="0" * 64, created_by=marketer, total_rows=1, error_count=1,
    )  # fmt: skip
    lead_models.ImportRowError.objects.create(
        job=job, row_number=1, values={"email": "nope"}, errors={"email": ["Not an email."]}
    )
    api_key, _ = api_key_create(name=f"Forms {n}", created_by=revops)
    lead_models.ApiKeyUsage.objects.create(api_key=api_key, window_start=now, requests=3)

    sla_models.RoutingRule.objects.create(name=f"Rule {n}", team=team)
    sla_models.RoutingCounter.objects.create(user=rep, assigned=1, last_assigned_at=now)
    sla_models.RoutingRotation.objects.create(team=team, level=1)
    sla_models.Breach.objects.create(
        lead=lead, sla_version=sla, owner=rep, due_at=lead.response_due_at, breached_at=now
    )
    rescore_job_create()
    sla_models.Notification.objects.create(recipient=rep, title="A lead for you")

    retro = make_retrospective(
        opportunity=deal,
        participants=[(marketer, "marketing"), (rep, "sales")],
        drivers=[("pricing-packaging", "hurt")],
    )
    make_action_item(retro, owner=marketer)
    reporting_models.SharedGoal.objects.create(
        title="Pipeline", metric="new_pipeline", target=Decimal(1000), team=team,
        starts_on=date(2026, 7, 1), ends_on=date(2026, 9, 30),
    )  # fmt: skip
    reporting_models.QuarterlyReview.objects.create(
        quarter_start=date(2020 + n, 4, 1), improvement="Call within the hour", recorded_by=revops
    )
    if n == 1:
        sla_models.RoutingSettings.objects.create(default_owner=revops)
        reporting_models.ReportingSettings.objects.create()
    reporting_rebuild()
    make_touchpoint(lead)  # after the rebuild: a change the next refresh takes in

    ServiceHeartbeat.objects.create(name=f"service {n}", seen_at=now)
    SweepState.objects.create(name=f"sweep {n}", upto=now)
    return {"lead": lead}


@pytest.fixture
def backoffice(db, make_user, taxonomy):
    return rows_add(n=1, make_user=make_user)


def admin_urls(model, obj=None):
    prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    if obj is None:
        return reverse(f"{prefix}_changelist")
    return reverse(f"{prefix}_change", args=[obj.pk])


def test_every_project_table_has_a_row_to_show(backoffice):
    """So the page test below renders every list's columns and every change
    form, not only empty lists."""
    empty = [model._meta.label for model, _ in project_admins() if not model.objects.exists()]
    assert not empty, f"add rows for these to the backoffice fixture: {empty}"


def test_revops_admins_open_every_list_search_and_form(client_for, revops, backoffice):
    client = client_for(revops)
    failures = []
    for model, model_admin in admin.site._registry.items():
        pages = [admin_urls(model)]
        if model_admin.search_fields:
            pages.append(admin_urls(model) + "?q=42")
        first = model.objects.order_by("pk").first()
        if first is not None:
            pages.append(admin_urls(model, first))
        for url in pages:
            status = client.get(url).status_code
            if status != 200:
                failures.append((url, status))
    assert not failures, f"admin pages a RevOps admin cannot open: {failures}"


@pytest.mark.parametrize("fixture_name", ["marketer", "rep", "manager"])
def test_other_roles_are_sent_to_the_admin_login(request, client, backoffice, fixture_name):
    client.force_login(request.getfixturevalue(fixture_name))
    refused = []
    for model in admin.site._registry:
        response = client.get(admin_urls(model))
        if response.status_code != 302 or "/admin/login/" not in response["Location"]:
            refused.append((model._meta.label, response.status_code))
    assert not refused, f"admin lists open to a {fixture_name}: {refused}"


def test_singletons_take_no_second_row(client_for, revops, backoffice):
    client = client_for(revops)
    for model in SINGLETONS:
        assert model.objects.count() == 1
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        assert client.get(reverse(f"{prefix}_add")).status_code == 403, model._meta.label


def test_system_tables_are_read_only_but_viewable(client_for, revops, backoffice):
    client = client_for(revops)
    funnel = reporting_models.LeadFunnel.objects.first()
    page = client.get(admin_urls(reporting_models.LeadFunnel, funnel)).content.decode()
    assert 'name="_save"' not in page  # a view, not a form
    changelist = client.get(admin_urls(reporting_models.LeadFunnel)).content.decode()
    assert "delete_selected" not in changelist
    prefix = "admin:reporting_leadfunnel"
    assert client.get(reverse(f"{prefix}_add")).status_code == 403
    assert client.get(reverse(f"{prefix}_delete", args=[funnel.pk])).status_code == 403


def test_deleting_a_lead_takes_its_derived_rows_along(client_for, revops, backoffice):
    """The derived tables refuse deletes on their own pages, not as the
    cascade of deleting what they were derived from."""
    lead = backoffice["lead"]
    url = reverse("admin:leads_lead_delete", args=[lead.pk])
    response = client_for(revops).post(url, {"post": "yes"})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not lead_models.Lead.objects.filter(pk=lead.pk).exists()
    assert not reporting_models.LeadFunnel.objects.filter(lead_id=lead.pk).exists()
    assert not sla_models.ScoreEvaluation.objects.filter(lead_id=lead.pk).exists()


def test_no_admin_list_takes_more_queries_for_more_rows(client_for, revops, make_user, backoffice):
    """Every list's columns (foreign keys and what their names show) are
    joined in, not fetched row by row."""
    client = client_for(revops)
    client.get(reverse("admin:index"))  # the session and content types, once

    def queries() -> dict:
        counts = {}
        for model in admin.site._registry:
            with CaptureQueriesContext(connection) as captured:
                assert client.get(admin_urls(model)).status_code == 200
            counts[model._meta.label] = len(captured)
        return counts

    before = queries()
    rows_add(n=2, make_user=make_user)
    after = queries()
    grown = {
        label: (before[label], count) for label, count in after.items() if count > before[label]
    }
    assert not grown, f"admin lists whose queries grow with their rows (before, after): {grown}"


# --- The duplicate hint on the account form -------------------------------------------------

ACCOUNT_FORM = {"name": "", "domain": "", "technologies": "", "employees": "", "industry": "",
                "country": "", "region": "", "external_id": ""}  # fmt: skip


def account_post(client, url, **fields):
    return client.post(url, {**ACCOUNT_FORM, **fields}, follow=True)


def test_adding_an_account_like_an_existing_one_asks_first_then_says_so(client_for, revops):
    acme = make_account(name="Acme Corporation", domain="acme.com")
    client = client_for(revops)
    add_url = reverse("admin:leads_account_add")
    assert 'name="save_anyway"' not in client.get(add_url).content.decode()

    held = account_post(client, add_url, name="ACME Inc.", domain="acme.co.uk")
    page = held.content.decode()
    assert held.status_code == 200 and not lead_models.Account.objects.filter(name="ACME Inc.")
    assert "This looks like an existing account:" in page
    assert f'<a href="{admin_urls(lead_models.Account, acme)}">Acme Corporation</a>' in page
    assert f'(acme.com, <a href="{acme.get_absolute_url()}">account page</a>)' in page
    assert "edit that account instead of adding this one" in page
    assert 'name="save_anyway"' in page and "Save anyway: this is a different company" in page

    saved = account_post(client, add_url, name="ACME Inc.", domain="acme.co.uk", save_anyway="on")
    page = saved.content.decode()
    new = lead_models.Account.objects.get(name="ACME Inc.")
    assert saved.redirect_chain[-1][0] == admin_urls(lead_models.Account)
    assert "“ACME Inc.” was saved, and it looks like an existing account:" in page
    assert f'<a href="{admin_urls(lead_models.Account, acme)}">Acme Corporation</a>' in page
    assert "delete “ACME Inc.” and edit the existing account instead" in page
    assert new.name_key == acme.name_key


def test_adding_an_account_like_no_other_saves_without_a_hint(client_for, revops):
    make_account(name="Acme Corporation", domain="acme.com")
    response = account_post(
        client_for(revops), reverse("admin:leads_account_add"), name="Initech", domain="initech.io"
    )
    page = response.content.decode()
    assert response.redirect_chain and lead_models.Account.objects.filter(name="Initech").exists()
    assert "looks like an existing account" not in page and 'name="save_anyway"' not in page


def test_renaming_an_account_like_another_asks_first(client_for, revops):
    acme = make_account(name="Acme Corporation", domain="acme.com")
    globex = make_account(name="Globex", domain="globex.com")
    client = client_for(revops)
    url = admin_urls(lead_models.Account, globex)

    held = account_post(client, url, name="ACME", domain="globex.com")
    assert "The new name looks like an existing account:" in held.content.decode()
    assert "leads and deals to that one and delete this one" in held.content.decode()
    globex.refresh_from_db()
    assert globex.name == "Globex"

    saved = account_post(client, url, name="ACME", domain="globex.com", save_anyway="on")
    page = saved.content.decode()
    globex.refresh_from_db()
    assert globex.name == "ACME"
    assert "“ACME” was saved, and it looks like an existing account:" in page
    assert f'<a href="{acme.get_absolute_url()}">account page</a>' in page
    assert "leads and deals to the existing one, then delete this one" in page
    change = LogEntry.objects.filter(object_id=str(globex.pk)).latest("id")
    assert "Save anyway" not in change.get_change_message()  # not a change to the account


def test_editing_an_account_without_renaming_it_gives_no_hint(client_for, revops):
    make_account(name="Acme Corporation", domain="acme.com")
    twin = make_account(name="ACME Corp", domain="acme.co.uk")  # already there: no new doubt
    client = client_for(revops)
    url = admin_urls(lead_models.Account, twin)
    for name in ("ACME Corp", "Acme Corp."):  # the same name, or the same name key
        response = account_post(client, url, name=name, domain="acme.co.uk", employees="900")
        assert response.redirect_chain, response.content.decode()[:2000]
        assert "looks like an existing account" not in response.content.decode()
    twin.refresh_from_db()
    assert (twin.name, twin.employees) == ("Acme Corp.", 900)
    renamed = account_post(client, url, name="Initech", domain="acme.co.uk")
    assert renamed.redirect_chain and "looks like" not in renamed.content.decode()

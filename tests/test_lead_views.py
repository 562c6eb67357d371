"""Lead, account, deal and feedback pages: full pages, htmx fragments, query counts."""

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.models import Channel, Lead, LeadFeedback, LeadStage, Opportunity
from tests.factories import (
    make_account,
    make_campaign,
    make_competitor,
    make_lead,
    make_opportunity,
    make_team,
    make_touchpoint,
    reason,
)

pytestmark = pytest.mark.usefixtures("taxonomy")

HTMX = {"HX-Request": "true"}


def make_leads(n, **fields):
    return [make_lead(**fields) for _ in range(n)]


# --- The list --------------------------------------------------------------------


def test_lead_list_page_and_fragment(client_for, marketer):
    make_leads(3)
    client = client_for(marketer)
    page = client.get(reverse("leads:lead_list"))
    assert page.status_code == 200
    assert "<html" in page.content.decode()
    fragment = client.get(reverse("leads:lead_list"), headers=HTMX)
    body = fragment.content.decode()
    assert "<html" not in body and 'id="lead-results"' in body
    assert "3 leads match" in body
    assert "HX-Request" in fragment["Vary"]


def test_lead_list_searches_name_email_and_company(client_for, marketer):
    make_lead(first_name="Zelda", last_name="Quartz", email="zq@nowhere.example", company="Acme")
    make_lead(first_name="Bob", last_name="Brown", email="bob@initech.example", company="Initech")
    client = client_for(marketer)
    for q in ("zel", "quartz", "zelda qu", "zq@", "acme"):
        body = client.get(reverse("leads:lead_list"), {"q": q}, headers=HTMX).content.decode()
        assert "Zelda Quartz" in body and "Bob Brown" not in body, q


def test_lead_list_filters(client_for, marketer, rep):
    campaign = make_campaign(name="Spring webinar", channel=Channel.WEBINAR)
    hot = make_lead(
        first_name="Hot", stage=LeadStage.MQL, owner=rep, score=90, source_campaign=campaign,
        source_channel=Channel.WEBINAR, employees=5000, segment="enterprise",
        response_due_at=timezone.now() - timedelta(hours=1),
    )  # fmt: skip
    make_lead(first_name="Cold", stage=LeadStage.NEW, score=10, source_channel=Channel.EMAIL)
    client = client_for(marketer)
    cases = {
        "stage": "mql",
        "owner": str(rep.pk),
        "channel": Channel.WEBINAR,
        "campaign": str(campaign.pk),
        "score_min": "50",
        "sla": "overdue",
        "segment": "enterprise",
    }
    for key, value in cases.items():
        body = client.get(reverse("leads:lead_list"), {key: value}, headers=HTMX).content.decode()
        assert hot.full_name in body and "Cold" not in body, key
    body = client.get(reverse("leads:lead_list"), {"owner": "none"}, headers=HTMX).content.decode()
    assert "Cold" in body and hot.full_name not in body


def test_lead_list_invalid_filter_shows_error_in_place(client_for, marketer):
    make_lead(first_name="High", score=90)
    make_lead(first_name="Middle", score=50)
    client = client_for(marketer)
    params = {"score_min": "80", "score_max": "20"}
    page = client.get(reverse("leads:lead_list"), params).content.decode()
    assert page.count("The upper score must not be below the lower one.") == 1
    # The filters update in place: the error must be inside the swapped fragment.
    fragment = client.get(reverse("leads:lead_list"), params, headers=HTMX)
    body = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in body
    assert "The upper score must not be below the lower one." in body
    assert "leaves those filters out" in body
    assert "High" in body and "Middle" not in body  # the valid lower bound still applies


def test_lead_list_keyset_pages_cover_every_lead_once(client_for, marketer):
    now = timezone.now()
    leads = [make_lead(created_at=now - timedelta(minutes=i)) for i in range(120)]
    client = client_for(marketer)
    seen = []
    url, params = reverse("leads:lead_list"), {}
    for _ in range(5):
        response = client.get(url, params, headers=HTMX)
        page = response.context["page"]
        seen += [lead.pk for lead in page.items]
        if not page.has_next:
            break
        params = {"after": page.next_cursor}
    assert seen == [lead.pk for lead in leads]  # newest first, each once
    # and back: the previous page of page 3 is page 2
    second = client.get(url, {"after": client.get(url).context["page"].next_cursor})
    third_cursor = second.context["page"].next_cursor
    third = client.get(url, {"after": third_cursor})
    back = client.get(url, {"before": third.context["page"].previous_cursor})
    assert [x.pk for x in back.context["page"].items] == [
        x.pk for x in second.context["page"].items
    ]


def _all_pages(leads, sort, size):
    """Every page forward from the first, then every page back from the last."""
    from leads.selectors import lead_list_page

    pages = [lead_list_page(leads, sort=sort, size=size)]
    while pages[-1].has_next:
        pages.append(lead_list_page(leads, sort=sort, after=pages[-1].next_cursor, size=size))
    backwards = [pages[-1]]
    while backwards[-1].has_previous:
        backwards.append(
            lead_list_page(leads, sort=sort, before=backwards[-1].previous_cursor, size=size)
        )
    return pages, backwards[::-1]


@pytest.mark.parametrize(
    ("sort", "expected_order"),
    [
        ("score", lambda lead: (-lead.score, -lead.pk)),
        ("name", lambda lead: (lead.last_name, lead.first_name, lead.pk)),
    ],
)
def test_lead_list_sorts_page_by_keyset_through_ties(db, sort, expected_order):
    from leads.models import Lead

    # Ties everywhere: three scores, two surnames, repeated first names.
    for n in range(14):
        make_lead(score=(n % 3) * 20, last_name="Ames" if n % 2 else "Brook",
                  first_name="Jo" if n % 4 < 2 else "Al")  # fmt: skip
    leads = Lead.objects.all()
    expected = [lead.pk for lead in sorted(leads, key=expected_order)]
    for size in (3, 4, 5):  # page boundaries inside different runs of ties
        forward, backward = _all_pages(leads, sort, size)
        seen = [lead.pk for page in forward for lead in page.items]
        assert seen == expected, size  # no row skipped or repeated
        assert [[x.pk for x in p.items] for p in backward] == [
            [x.pk for x in p.items] for p in forward
        ], size


def test_lead_list_sort_parameter_orders_the_rows(client_for, marketer):
    make_lead(first_name="Low", score=10)
    make_lead(first_name="High", score=95)
    make_lead(first_name="Mid", score=50)
    client = client_for(marketer)
    by_score = client.get(reverse("leads:lead_list"), {"sort": "score"}, headers=HTMX)
    assert [lead.first_name for lead in by_score.context["page"].items] == ["High", "Mid", "Low"]
    by_change = client.get(reverse("leads:lead_list"), {"sort": "changed"}, headers=HTMX)
    assert len(by_change.context["page"].items) == 3


def test_lead_list_sla_status_filters(client_for, marketer):
    now = timezone.now()
    due = now + timedelta(hours=2)
    leads = {
        "waiting": make_lead(first_name="Waiting", response_due_at=due),
        "overdue": make_lead(first_name="Overdue", response_due_at=now - timedelta(hours=1)),
        "met": make_lead(first_name="Met", response_due_at=due, first_contact_at=now),
        "late": make_lead(
            first_name="Late",
            response_due_at=now - timedelta(hours=3),
            first_contact_at=now - timedelta(hours=1),
        ),
        "none": make_lead(first_name="Unclocked"),
    }
    client = client_for(marketer)
    for status, lead in leads.items():
        response = client.get(reverse("leads:lead_list"), {"sla": status}, headers=HTMX)
        assert [x.pk for x in response.context["page"].items] == [lead.pk], status


def test_lead_list_score_max_alone(client_for, marketer):
    make_lead(first_name="Cool", score=30)
    make_lead(first_name="Warm", score=60)
    make_lead(first_name="Edge", score=40)
    response = client_for(marketer).get(
        reverse("leads:lead_list"), {"score_max": "40"}, headers=HTMX
    )
    assert {x.first_name for x in response.context["page"].items} == {"Cool", "Edge"}


def test_lead_list_bad_cursor_falls_back_to_first_page(client_for, marketer):
    make_leads(2)
    response = client_for(marketer).get(reverse("leads:lead_list"), {"after": "not-a-cursor!"})
    assert response.status_code == 200
    assert len(response.context["page"].items) == 2


def test_lead_list_query_count_does_not_grow_with_rows(
    client_for, marketer, rep, django_assert_max_num_queries
):
    client = client_for(marketer)
    campaign = make_campaign()
    account = make_account()
    make_leads(5, owner=rep, source_campaign=campaign, account=account)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(reverse("leads:lead_list"))
    make_leads(60, owner=rep, source_campaign=campaign, account=account)
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("leads:lead_list"))
    assert len(many) == len(few)
    # session, user, groups (roles), sellers for the owner filter, campaigns,
    # SLA versions, the page of rows, the capped count, unread notifications.
    assert len(many) <= 10


def test_lead_list_filters_by_the_sla_version_leads_qualified_under(client_for, marketer):
    from tests.sla_factories import make_sla

    v1 = make_sla(title="First agreement")
    v2 = make_sla(title="Faster response")
    make_sla(publish=False, title="Draft ideas")
    old = make_lead(first_name="Oldrule", stage=LeadStage.SAL, sla_version=v1)
    new = make_lead(first_name="Newrule", stage=LeadStage.MQL, sla_version=v2)
    make_lead(first_name="Never", stage=LeadStage.NEW)
    client = client_for(marketer)
    page = client.get(reverse("leads:lead_list")).content.decode()
    assert '<option value="" selected>Any SLA version</option>' in page
    assert f'<option value="{v2.pk}">v2 — Faster response</option>' in page
    assert "Draft ideas" not in page  # drafts qualify nobody
    assert "MQL under v1" in page and "MQL under v2" in page

    response = client.get(reverse("leads:lead_list"), {"sla_version": v2.pk}, headers=HTMX)
    assert [x.pk for x in response.context["page"].items] == [new.pk]
    assert "MQL under v2" in response.content.decode()
    older = client.get(reverse("leads:lead_list"), {"sla_version": v1.pk}, headers=HTMX)
    assert [x.pk for x in older.context["page"].items] == [old.pk]
    export = client.get(reverse("leads:lead_export"), {"sla_version": v2.pk})
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0][-1] == "sla_version" and [row[-1] for row in rows[1:]] == ["v2"]


def test_lead_list_queries_do_not_grow_with_versions_and_accounts_shown(client_for, marketer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.sla_factories import make_sla

    client = client_for(marketer)
    version = make_sla()
    make_leads(3, sla_version=version, account=make_account())
    url = reverse("leads:lead_list")
    with CaptureQueriesContext(connection) as few:
        client.get(url, {"sla_version": version.pk})
    for _ in range(30):
        make_lead(sla_version=make_sla(), account=make_account())
    with CaptureQueriesContext(connection) as many:
        client.get(url, {"sla_version": version.pk})
    assert len(many) == len(few)


def test_export_csv_is_filtered_and_formula_safe(client_for, marketer):
    make_lead(first_name="=HYPERLINK(1)", last_name="Evil", stage=LeadStage.MQL)
    make_lead(first_name="Plain", stage=LeadStage.NEW)
    response = client_for(marketer).get(reverse("leads:lead_export"), {"stage": "mql"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["id", "email", "first_name"]
    assert len(rows) == 2
    assert rows[1][2] == "'=HYPERLINK(1)"


# --- The lead page -------------------------------------------------------------------


def test_lead_detail_shows_one_timeline(client_for, marketer, rep):
    campaign = make_campaign(name="Q3 ebook")
    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    make_touchpoint(lead, type="content_download", campaign=campaign)
    from leads import services

    services.activity_log(actor=rep, lead=lead, kind="call", subject="Intro call")
    services.lead_accept(lead=lead, actor=rep)
    body = client_for(marketer).get(lead.get_absolute_url()).content.decode()
    for text in ("Content download", "Q3 ebook", "Intro call", "SAL (accepted)", "Accepted"):
        assert text in body, text


def test_lead_detail_query_count_does_not_grow_with_history(client_for, rep):
    lead = make_lead(stage=LeadStage.SAL, owner=rep)
    client = client_for(rep)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        make_touchpoint(lead, campaign=make_campaign())
    with CaptureQueriesContext(connection) as few:
        client.get(lead.get_absolute_url())
    campaign = make_campaign()
    for _ in range(80):
        make_touchpoint(lead, campaign=campaign)
    with CaptureQueriesContext(connection) as many:
        response = client.get(lead.get_absolute_url())
    assert len(many) == len(few)
    assert response.context["older_than"] is not None  # more than one screen: paged


def test_timeline_pages_back_with_htmx(client_for, rep):
    lead = make_lead(owner=rep)
    now = timezone.now()
    for i in range(70):
        make_touchpoint(lead, occurred_at=now - timedelta(hours=i))
    client = client_for(rep)
    first = client.get(lead.get_absolute_url())
    older = client.get(
        lead.get_absolute_url(), {"before": first.context["older_than"].token}, headers=HTMX
    )
    body = older.content.decode()
    assert "<html" not in body
    assert len(older.context["timeline"]) == 70 - 60  # the rest, none repeated


def test_timeline_pages_back_without_javascript(client_for, rep):
    """The "Show older" link is a real link: the page with the timeline
    starting at the older entries, and a way back to the newest."""
    lead = make_lead(owner=rep)
    now = timezone.now()
    for i in range(70):
        make_touchpoint(lead, occurred_at=now - timedelta(hours=i))
    client = client_for(rep)
    first = client.get(lead.get_absolute_url())
    assert "Back to the newest" not in first.content.decode()
    older = client.get(lead.get_absolute_url(), {"before": first.context["older_than"].token})
    body = older.content.decode()
    assert "<html" in body and "Back to the newest" in body
    assert len(older.context["timeline"]) == 10 and older.context["older_than"] is None
    newest_first = {e.item.pk for e in first.context["timeline"]}
    assert newest_first.isdisjoint(e.item.pk for e in older.context["timeline"])
    # A hand-edited cursor shows the page from the newest entries.
    odd = client.get(lead.get_absolute_url(), {"before": "yesterday"})
    assert odd.status_code == 200 and len(odd.context["timeline"]) == 60


def test_timeline_pages_through_entries_sharing_a_moment(client_for, rep):
    """A rejection writes two stage changes and its feedback at one moment;
    with the page boundary among them, none is skipped or shown twice."""
    from leads import services

    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    services.lead_reject(lead=lead, actor=rep, reason=reason("no-budget"))
    rejected_at = lead.stage_changes.get(to_stage="rejected").changed_at
    for i in range(59):  # newer than the rejection: page 1 ends among its three rows
        make_touchpoint(lead, occurred_at=rejected_at + timedelta(minutes=i + 1))
    client = client_for(rep)
    first = client.get(lead.get_absolute_url())
    seen = [(e.kind, e.item.pk) for e in first.context["timeline"]]
    older = client.get(
        lead.get_absolute_url(), {"before": first.context["older_than"].token}, headers=HTMX
    )
    assert older.context["older_than"] is None
    seen += [(e.kind, e.item.pk) for e in older.context["timeline"]]
    assert len(seen) == len(set(seen)) == 59 + 3
    assert [kind for kind, _ in seen[59:]] == ["stage", "stage", "feedback"]
    assert "Show older" not in older.content.decode()


def test_timeline_cursor_pages_ties_of_every_kind_exactly_once(rep):
    from leads import services
    from leads.selectors import TimelineCursor, lead_timeline

    lead = make_lead(stage=LeadStage.SAL, owner=rep)
    moment = timezone.now() - timedelta(hours=1)
    for _ in range(3):
        make_touchpoint(lead, occurred_at=moment)
        services.activity_log(actor=rep, lead=lead, kind="note", subject="x", occurred_at=moment)
        services.lead_feedback_add(lead=lead, actor=rep, note="heard something")
    lead.feedback.update(created_at=moment)
    make_touchpoint(lead, occurred_at=moment - timedelta(minutes=1))
    everything, _ = lead_timeline(lead, size=100)
    for size in (1, 2, 4):
        seen, cursor = [], None
        while True:
            # The cursor survives the round trip through the URL.
            before = TimelineCursor.parse(cursor.token) if cursor else None
            entries, cursor = lead_timeline(lead, before=before, size=size)
            seen += [(e.kind, e.item.pk) for e in entries]
            if cursor is None:
                break
        assert seen == [(e.kind, e.item.pk) for e in everything], size
    assert len(everything) == 10


def test_timeline_cursor_refuses_what_is_not_one():
    from leads.selectors import TimelineCursor

    assert TimelineCursor.parse("not a time") is None
    assert TimelineCursor.parse("2026-05-01T10:00:00+00:00~nonsense~3") is None
    assert TimelineCursor.parse("2026-05-01T10:00:00+00:00~stage~x") is None
    older_link = TimelineCursor.parse("2026-05-01T10:00:00+00:00")
    assert (older_link.kind, older_link.id) == ("", 0)  # everything before that moment


def test_rep_sees_work_buttons_marketing_does_not(client_for, rep, marketer):
    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    rep_body = client_for(rep).get(lead.get_absolute_url()).content.decode()
    assert "Accept</button>" in rep_body and "?do=reject" in rep_body
    marketing_body = client_for(marketer).get(lead.get_absolute_url()).content.decode()
    assert "Accept</button>" not in marketing_body and "?do=reject" not in marketing_body


def test_reject_with_htmx_returns_fragment_and_triggers_event(client_for, rep):
    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    client = client_for(rep)
    form = client.get(lead.get_absolute_url(), {"do": "reject"}, headers=HTMX)
    assert 'name="reason"' in form.content.decode()
    response = client.post(
        reverse("leads:lead_reject", args=[lead.pk]),
        {"reason": reason("not-icp-fit").pk, "note": "Too small", "version": lead.version},
        headers=HTMX,
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "rejected and returned to marketing" in body
    assert "lead-changed" in response["HX-Trigger"]
    lead.refresh_from_db()
    assert lead.stage == LeadStage.RECYCLED


def test_reject_without_reason_shows_error_in_place_and_changes_nothing(client_for, rep):
    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    response = client_for(rep).post(
        reverse("leads:lead_reject", args=[lead.pk]), {"note": "no reason"}, headers=HTMX
    )
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage == LeadStage.MQL


def test_plain_post_redirects_with_message(client_for, rep):
    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    client = client_for(rep)
    response = client.post(reverse("leads:lead_accept", args=[lead.pk]))
    assert response.status_code == 302 and response["Location"] == lead.get_absolute_url()
    body = client.get(lead.get_absolute_url()).content.decode()
    assert "You accepted" in body


def test_invalid_transition_is_refused_with_clear_message(client_for, rep):
    lead = make_lead(stage=LeadStage.NEW, owner=rep)
    response = client_for(rep).post(reverse("leads:lead_qualify", args=[lead.pk]), headers=HTMX)
    assert "Cannot qualify as SQL" in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage == LeadStage.NEW


def test_stale_version_gets_conflict_message(client_for, rep):
    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    client = client_for(rep)
    client.post(reverse("leads:lead_accept", args=[lead.pk]), {"version": lead.version})
    response = client.post(
        reverse("leads:lead_reject", args=[lead.pk]),
        {"reason": reason("no-timing").pk, "version": lead.version},
        headers=HTMX,
    )
    assert "changed by someone else" in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage == LeadStage.SAL


def test_other_reps_cannot_post_actions(client_for, rep, make_user):
    lead = make_lead(stage=LeadStage.MQL, owner=make_user("otto", "Sales rep"))
    response = client_for(rep).post(reverse("leads:lead_accept", args=[lead.pk]))
    assert response.status_code == 403
    lead.refresh_from_db()
    assert lead.stage == LeadStage.MQL


def test_convert_redirects_to_the_deal(client_for, rep):
    lead = make_lead(stage=LeadStage.SQL, owner=rep, account=make_account(name="Umbrella"))
    client = client_for(rep)
    response = client.post(
        reverse("leads:lead_convert", args=[lead.pk]), {"amount": "12000"}, headers=HTMX
    )
    opportunity = Opportunity.objects.get(source_lead=lead)
    assert response["HX-Redirect"] == opportunity.get_absolute_url()
    body = client.get(opportunity.get_absolute_url()).content.decode()
    assert "Umbrella" in body and "$12,000" in body


def test_log_activity_and_feedback(client_for, rep):
    lead = make_lead(stage=LeadStage.SAL, owner=rep)
    client = client_for(rep)
    client.post(
        reverse("leads:lead_activity", args=[lead.pk]), {"kind": "call", "subject": "Discovery"}
    )
    lead.refresh_from_db()
    assert lead.first_contact_at is not None
    bad = client.post(reverse("leads:lead_feedback", args=[lead.pk]), {}, headers=HTMX)
    assert "Write a note, or pick an objection" in bad.content.decode()
    client.post(reverse("leads:lead_feedback", args=[lead.pk]), {"note": "Using spreadsheets"})
    assert LeadFeedback.objects.filter(lead=lead, verdict="note").exists()


def test_manager_reassigns_a_team_lead_and_the_rep_is_notified(client_for, manager, rep):
    make_team(manager=manager, members=[rep])
    lead = make_lead(stage=LeadStage.MQL)
    client_for(manager).post(reverse("leads:lead_assign", args=[lead.pk]), {"owner": rep.pk})
    lead.refresh_from_db()
    assert lead.owner == rep
    assert rep.notifications.filter(title__contains="assigned you").exists()


def test_rep_cannot_reassign(client_for, rep):
    lead = make_lead(owner=rep)
    response = client_for(rep).post(reverse("leads:lead_assign", args=[lead.pk]), {"owner": ""})
    assert response.status_code == 403


# --- Creating leads, duplicates ---------------------------------------------------------


def test_create_lead_and_duplicate_hint(client_for, marketer):
    existing = make_lead(
        first_name="Ann", last_name="Lee", email="ann@acme.example", company="Acme"
    )
    client = client_for(marketer)
    hint = client.get(
        reverse("leads:lead_create"),
        {"first_name": "ann", "last_name": "LEE", "company": "acme", "email": "ann.lee@x.example"},
        headers=HTMX,
    ).content.decode()
    assert existing.get_absolute_url() in hint
    duplicate = client.post(reverse("leads:lead_create"), {"email": "ANN@acme.example"})
    assert "A lead with this email already exists." in duplicate.content.decode()
    response = client.post(
        reverse("leads:lead_create"),
        {"email": "new@initech.example", "first_name": "New", "channel": "events"},
    )
    lead = Lead.objects.get(email="new@initech.example")
    assert response["Location"] == lead.get_absolute_url()
    assert lead.source_channel == "events"


def test_new_lead_with_a_public_company_domain_takes_the_emails(client_for, marketer):
    acme = make_account(name="Acme", domain="acme.example")
    client = client_for(marketer)
    client.post(
        reverse("leads:lead_create"), {"email": "zed@acme.example", "company_domain": "gmail.com"}
    )
    lead = Lead.objects.get(email="zed@acme.example")
    assert (lead.company_domain, lead.account) == ("acme.example", acme)
    client.post(
        reverse("leads:lead_create"), {"email": "zoe@gmail.com", "company_domain": "Gmail.com"}
    )
    lead = Lead.objects.get(email="zoe@gmail.com")
    assert (lead.company_domain, lead.account) == ("", None)


def test_the_admin_refuses_an_account_with_a_public_mail_domain(client_for, revops):
    from leads.models import Account

    client = client_for(revops)
    response = client.post(
        reverse("admin:leads_account_add"), {"name": "Google", "domain": "www.gmail.com"}
    )
    assert response.status_code == 200
    assert "gmail.com is a public mail domain" in response.content.decode()
    assert not Account.objects.filter(name="Google").exists()
    client.post(reverse("admin:leads_account_add"), {"name": "Google", "domain": "google.com"})
    assert Account.objects.get(name="Google").domain == "google.com"


def test_edit_lead_details(client_for, marketer):
    lead = make_lead(title="Engineer")
    client_for(marketer).post(
        reverse("leads:lead_edit", args=[lead.pk]),
        {"title": "VP Engineering", "first_name": lead.first_name, "employees": "1200"},
    )
    lead.refresh_from_db()
    assert lead.title == "VP Engineering" and lead.segment == "enterprise"


def test_an_edit_writes_only_what_its_user_changed(client_for, marketer, manager):
    """Two people correct the same lead from forms opened at the same time:
    each keeps the other's change (the form posts the values it was opened with)."""
    lead = make_lead(title="Engineer", phone="111", company="Acme")
    url = reverse("leads:lead_edit", args=[lead.pk])
    page = client_for(marketer).get(url).content.decode()
    assert 'name="initial-phone" value="111"' in page
    opened = {"first_name": lead.first_name, "last_name": lead.last_name, "title": "Engineer",
              "phone": "111", "company": "Acme"}  # fmt: skip
    as_opened = {f"initial-{name}": value for name, value in opened.items()}
    client_for(manager).post(url, {**opened, **as_opened, "phone": "222"})
    client_for(marketer).post(url, {**opened, **as_opened, "title": "VP Engineering"})
    lead.refresh_from_db()
    assert (lead.title, lead.phone) == ("VP Engineering", "222")
    # Clearing a field is a change too; sending the form back untouched is none.
    client_for(marketer).post(url, {**opened, "phone": "222", "title": "VP Engineering",
                                    **as_opened, "initial-phone": "222",
                                    "initial-title": "VP Engineering", "company": ""})  # fmt: skip
    lead.refresh_from_db()
    assert lead.company == "" and lead.phone == "222"
    version = lead.version
    same = {**opened, "phone": "222", "title": "VP Engineering", "company": ""}
    response = client_for(marketer).post(
        url, {**same, **{f"initial-{k}": v for k, v in same.items()}}
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.version == version


# --- Accounts, deals, feedback view ------------------------------------------------------------


def test_account_list_and_detail(client_for, rep):
    account = make_account(name="Acme Corporation", domain="acme.com")
    make_account(name="ACME Corp.", domain="acme-corp.example")
    make_lead(account=account, first_name="Pia")
    make_opportunity(account=account, name="Acme renewal", stage="proposal")
    make_opportunity(account=account, name="Acme pilot", stage="won")
    client = client_for(rep)
    body = client.get(reverse("leads:account_list"), {"q": "acme"}, headers=HTMX).content.decode()
    assert "Acme Corporation" in body and "ACME Corp." in body
    detail = client.get(account.get_absolute_url()).content.decode()
    for text in ("Pia", "Acme renewal", "Acme pilot", "Possible duplicate accounts", "ACME Corp."):
        assert text in detail, text


def test_account_list_filters_by_segment_and_industry(client_for, rep):
    big = make_account(name="Bigco", employees=5000, industry="Retail")
    make_account(name="Smallco", employees=20, industry="retail")
    make_account(name="Midsoft", employees=400, industry="software")
    client = client_for(rep)

    def names(params):
        response = client.get(reverse("leads:account_list"), params, headers=HTMX)
        return [account.name for account in response.context["page"].items]

    assert names({"segment": "enterprise"}) == ["Bigco"]
    assert names({"segment": ["enterprise", "smb"]}) == ["Bigco", "Smallco"]
    assert names({"industry": "RETAIL"}) == ["Bigco", "Smallco"]  # any case
    assert names({"industry": "retail", "segment": "smb"}) == ["Smallco"]
    assert big.segment == "enterprise"


def test_account_list_pages_by_name_keyset(client_for, rep):
    from leads.selectors import ACCOUNT_PAGE_SIZE

    # Same names on both sides of the page boundary: the id breaks the tie.
    for n in range(ACCOUNT_PAGE_SIZE + 7):
        make_account(name=f"Account {n // 3:03d}")
    client = client_for(rep)
    url = reverse("leads:account_list")
    first = client.get(url, headers=HTMX).context["page"]
    second = client.get(url, {"after": first.next_cursor}, headers=HTMX).context["page"]
    assert not second.has_next and len(second.items) == 7
    seen = [(a.name, a.pk) for a in first.items + second.items]
    assert seen == sorted(seen) and len(set(seen)) == ACCOUNT_PAGE_SIZE + 7
    back = client.get(url, {"before": second.previous_cursor}, headers=HTMX).context["page"]
    assert [a.pk for a in back.items] == [a.pk for a in first.items]
    body = client.get(url, {"segment": "mid_market"}, headers=HTMX).content.decode()
    assert "segment=mid_market&amp;after=" in body  # the pager keeps the filters


def test_account_page_shows_true_counts_pages_each_section_and_links_all_people(
    client_for, rep, marketer
):
    from leads import services
    from leads.selectors import ACCOUNT_SECTION_SIZE

    account = make_account(name="Acme")
    other = make_account(name="Elsewhere")
    extra = ACCOUNT_SECTION_SIZE + 3
    for n in range(extra):
        make_opportunity(account=account, name=f"Open {n}", stage="demo")
        make_opportunity(account=account, name=f"Closed {n}", stage="lost")
    people = [make_lead(account=account, owner=rep, last_name=f"P{n:02d}") for n in range(extra)]
    make_lead(account=other, first_name="Outsider")
    for n in range(extra):
        make_touchpoint(people[0], occurred_at=timezone.now() - timedelta(minutes=n))
        services.activity_log(actor=rep, lead=people[1], kind="call", subject=f"Call {n}")
    client = client_for(marketer)
    page = client.get(account.get_absolute_url())
    body = page.content.decode()
    for section in ("open", "closed", "touchpoints", "activities"):
        assert f'id="{section}-count">{extra}<' in body, section
        assert len(page.context["sections"][section].page.items) == ACCOUNT_SECTION_SIZE
    assert f'id="people-count">{extra}<' in body
    people_url = f"{reverse('leads:lead_list')}?account={account.pk}&amp;sort=name"
    assert f'href="{people_url}">All {extra} people' in body

    # Each section pages in place, by keyset, and back.
    cursor = page.context["sections"]["touchpoints"].page.next_cursor
    older = client.get(
        account.get_absolute_url(), {"section": "touchpoints", "after": cursor}, headers=HTMX
    )
    fragment = older.content.decode()
    assert "<html" not in fragment and fragment.strip().startswith('<section class="card')
    rest = older.context["sections"]["touchpoints"].page
    assert len(rest.items) == 3 and not rest.has_next
    shown = {t.pk for t in page.context["sections"]["touchpoints"].page.items}
    assert shown.isdisjoint(t.pk for t in rest.items)
    assert "HX-Request" in older["Vary"]
    plain = client.get(account.get_absolute_url(), {"section": "closed", "after": "junk"})
    assert len(plain.context["sections"]["closed"].page.items) == ACCOUNT_SECTION_SIZE

    # "All people" is the lead list filtered by the account, in place too.
    listed = client.get(reverse("leads:lead_list"), {"account": account.pk, "sort": "name"})
    assert [x.pk for x in listed.context["page"].items] == [x.pk for x in people]
    assert "People at <a" in listed.content.decode()
    fragment = client.get(
        reverse("leads:lead_list"), {"account": account.pk, "q": "p0"}, headers=HTMX
    )
    assert len(fragment.context["page"].items) == 10
    assert "Outsider" not in fragment.content.decode()
    unknown = client.get(reverse("leads:lead_list"), {"account": "999999"}, headers=HTMX)
    assert "Account: Select a valid choice" in unknown.content.decode()


def test_account_list_query_count_does_not_grow(client_for, rep):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(rep)
    for _ in range(3):
        make_account()
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("leads:account_list"))
    for _ in range(40):
        make_lead(account=make_account())
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("leads:account_list"))
    assert len(many) == len(few)


def test_feedback_view_aggregates_reasons_by_campaign(client_for, rep, marketer):
    from leads import services

    webinar = make_campaign(name="Webinar 7", channel=Channel.WEBINAR)
    for code in ("no-budget", "no-budget", "not-icp-fit"):
        lead = make_lead(
            stage=LeadStage.MQL, owner=rep, source_campaign=webinar, source_channel="webinar"
        )
        services.lead_reject(lead=lead, actor=rep, reason=reason(code))
    client = client_for(marketer)
    body = client.get(reverse("leads:feedback_report")).content.decode()
    assert "No budget" in body and "Not an ICP fit" in body
    by_campaign = client.get(
        reverse("leads:feedback_report"), {"group_by": "campaign", "start": "2000-01-01",
                                           "end": timezone.localdate().isoformat()},
        headers=HTMX,
    ).content.decode()  # fmt: skip
    assert "Webinar 7" in by_campaign and "<html" not in by_campaign
    by_channel = client.get(
        reverse("leads:feedback_report"), {"group_by": "channel", "start": "2000-01-01",
                                           "end": timezone.localdate().isoformat()},
    ).content.decode()  # fmt: skip
    assert "Webinar" in by_channel


def test_feedback_view_rejects_inverted_dates(client_for, marketer):
    client = client_for(marketer)
    params = {"start": "2026-05-01", "end": "2026-04-01", "group_by": "reason"}
    body = client.get(reverse("leads:feedback_report"), params).content.decode()
    assert body.count("The end date must be on or after the start date.") == 1
    fragment = client.get(reverse("leads:feedback_report"), params, headers=HTMX)
    body = fragment.content.decode()
    assert "<html" not in body and 'id="feedback-results"' in body
    assert "The end date must be on or after the start date." in body
    assert "Showing the default view instead" in body


def test_feedback_view_takes_the_default_period_for_dates_left_out(client_for, marketer):
    response = client_for(marketer).get(
        reverse("leads:feedback_report"), {"group_by": "campaign"}, headers=HTMX
    )
    assert response.context["group_by"] == "campaign"
    assert response.context["end"] == timezone.localdate()
    assert (response.context["end"] - response.context["start"]).days == 89
    assert 'id="filter-errors"' not in response.content.decode()


def test_feedback_view_counts_competitors_named_in_plain_notes(client_for, rep, marketer):
    from leads import services
    from leads.models import Objection

    webinar = make_campaign(name="Webinar 9", channel=Channel.WEBINAR)
    rival = make_competitor("Rivalsoft")
    lead = make_lead(stage=LeadStage.SAL, owner=rep, source_campaign=webinar,
                     source_channel=Channel.WEBINAR)  # fmt: skip
    expensive = Objection.objects.get(label="Too expensive")
    services.lead_feedback_add(
        lead=lead, actor=rep, note="Compared us with Rivalsoft", competitor=rival,
        objections=[expensive],
    )  # fmt: skip
    services.lead_reject(lead=lead, actor=rep, reason=reason("no-budget"), objections=[expensive])
    client = client_for(marketer)
    period = {"start": "2000-01-01", "end": timezone.localdate().isoformat()}

    by_competitor = client.get(
        reverse("leads:feedback_report"), {"group_by": "competitor", **period}, headers=HTMX
    )
    summary = {row["key"]: row["total"] for row in by_competitor.context["summary"]}
    assert summary == {"Rivalsoft": 1, None: 1}  # the note, and the rejection naming none
    body = by_competitor.content.decode()
    assert "(no competitor named)" in body

    for group_by, key in (("campaign", "Webinar 9"), ("channel", "Webinar")):
        response = client.get(
            reverse("leads:feedback_report"), {"group_by": group_by, **period}, headers=HTMX
        )
        intel = {str(row["key"]): row for row in response.context["intel"]}
        assert intel[key]["objections"] == [("Too expensive", 2)], group_by
        assert intel[key]["competitors"] == [("Rivalsoft", 1)], group_by
        body = response.content.decode()
        assert f"Objections and competitors by {group_by}" in body
        assert "Too expensive × 2" in body and "Rivalsoft × 1" in body

    outside = client.get(
        reverse("leads:feedback_report"),
        {"group_by": "campaign", "start": "2000-01-01", "end": "2000-12-31"},
        headers=HTMX,
    )
    assert outside.context["intel"] == [] and outside.context["summary"] == []


def test_duplicate_hint_on_the_lead_page(client_for, rep):
    work = make_lead(first_name="Jane", last_name="Doe", email="jane.doe@acme.example",
                     company="Acme", company_domain="acme.example")  # fmt: skip
    private = make_lead(first_name="J", last_name="D", email="jane.doe@gmail.com", company="")
    same_name = make_lead(first_name="jane", last_name="DOE", email="jd@acme.example",
                          company="Acme", company_domain="acme.example")  # fmt: skip
    namesake = make_lead(first_name="Jane", last_name="Doe", email="jane.doe@other.example",
                         company="Other", company_domain="other.example")  # fmt: skip
    duplicates = client_for(rep).get(work.get_absolute_url()).context["duplicates"]
    assert {d.pk for d in duplicates} == {private.pk, same_name.pk}
    assert namesake.pk not in {d.pk for d in duplicates}


def test_manager_filters_to_their_team(client_for, manager, rep, make_user):
    make_team(manager=manager, members=[rep])
    mine = make_lead(first_name="Teamlead", owner=rep)
    make_lead(first_name="Elsewhere", owner=make_user("otto", "Sales rep"))
    body = client_for(manager).get(reverse("leads:lead_list"), {"owner": "team"}, headers=HTMX)
    assert mine.full_name in body.content.decode()
    assert "Elsewhere" not in body.content.decode()


def test_lead_page_explains_the_score_and_links_the_persona(client_for, rep):
    from sla.scoring import leads_score
    from tests.sla_factories import make_icp, make_sla

    make_sla(), make_icp()
    lead = make_lead(title="IT Director", industry="software", owner=rep)
    make_touchpoint(lead, type="webinar_attended")
    leads_score([lead.pk], qualify=False)
    body = client_for(rep).get(lead.get_absolute_url()).content.decode()
    assert "Why 30" in body  # 15 fit (software) + 15 engagement
    assert "Industry is one of software" in body
    assert "content: 15.0 points after decay" in body
    assert "Persona: <a" in body and "IT leader" in body


def test_marketing_records_a_touchpoint_and_the_lead_is_rescored_after_commit(
    client_for, marketer, django_capture_on_commit_callbacks
):
    from leads.signals import touchpoints_recorded

    lead = make_lead()
    seen = []
    touchpoints_recorded.connect(lambda sender, lead_ids, **kw: seen.append(lead_ids), weak=False,
                                 dispatch_uid="test-seen")  # fmt: skip
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client_for(marketer).post(
                reverse("leads:lead_touchpoint", args=[lead.pk]),
                {"type": "event_attended", "occurred_at": "2026-01-05T10:00", "note": "Booth chat"},
                headers=HTMX,
            )
    finally:
        touchpoints_recorded.disconnect(dispatch_uid="test-seen")
    assert "Event attended recorded" in response.content.decode()
    assert lead.touchpoints.get().source == "ui"
    assert seen == [frozenset({lead.pk})]


def test_a_touchpoint_in_the_future_is_refused_in_place(client_for, marketer):
    lead = make_lead()
    response = client_for(marketer).post(
        reverse("leads:lead_touchpoint", args=[lead.pk]),
        {"type": "chat", "occurred_at": "2099-01-01T10:00"},
        headers=HTMX,
    )
    assert "cannot be in the future" in response.content.decode()
    assert not lead.touchpoints.exists()

"""The pipeline boards: move validation through the lead and deal services,
pages and htmx fragments, filters, paging, moves with their forms, refused
and conflicting moves, permissions, and the refresh after others' changes."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from leads import board_moves, services
from leads.models import (
    Channel,
    Lead,
    LeadFeedback,
    LeadStage,
    LeadStageChange,
    Opportunity,
    OpportunityStage,
    OpportunityStageChange,
)
from tests.factories import (
    make_account,
    make_competitor,
    make_lead,
    make_opportunity,
    make_team,
    reason,
)

pytestmark = pytest.mark.usefixtures("taxonomy")

HTMX = {"HX-Request": "true"}


def deal_move_url(deal):
    return reverse("boards:deal_move", args=[deal.pk])


def lead_move_url(lead):
    return reverse("boards:lead_move", args=[lead.pk])


def oob_column(body: str, stage: str) -> str:
    """The out-of-band column section for `stage` in a response."""
    match = re.search(
        rf'<section class="board-column" id="column-{stage}"[^>]*hx-swap-oob="true">(.*?)</section>',
        body,
        re.S,
    )
    assert match, f"no out-of-band column {stage} in the response"
    return match.group(1)


def column_figures(body: str, stage: str) -> str:
    """'2 deals · $4,000': a column header's count and amount, as text."""
    header = re.search(rf'id="column-{stage}".*?</header>', body, re.S).group(0)
    figures = re.search(r'<p class="board-figures">(.*?)</p>', header, re.S).group(1)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", figures)).strip()


# --- Service-level move validation ---------------------------------------------------


def test_handoff_moves_map_to_the_lead_transitions(manager):
    lead = make_lead(stage=LeadStage.MQL)  # unassigned: a manager may take it
    board_moves.lead_board_move(
        lead=lead, actor=manager, to_stage=LeadStage.SAL, expected_version=1
    )
    lead.refresh_from_db()
    assert lead.stage == LeadStage.SAL and lead.owner == manager  # accepting takes ownership
    board_moves.lead_board_move(
        lead=lead, actor=manager, to_stage=LeadStage.SQL, expected_version=2
    )
    lead.refresh_from_db()
    assert lead.stage == LeadStage.SQL
    changes = list(LeadStageChange.objects.filter(lead=lead).values_list("from_stage", "to_stage"))
    assert ("mql", "sal") in changes and ("sal", "sql") in changes


def test_handoff_reject_needs_a_reason_and_recycles(rep):
    lead = make_lead(stage=LeadStage.SAL, owner=rep)
    with pytest.raises(services.TransitionError, match="reason is required"):
        board_moves.lead_board_move(lead=lead, actor=rep, to_stage=LeadStage.RECYCLED)
    board_moves.lead_board_move(
        lead=lead,
        actor=rep,
        to_stage=LeadStage.RECYCLED,
        reason=reason("no-timing"),
        note="Next year.",
        competitor=make_competitor(),
    )
    lead.refresh_from_db()
    assert lead.stage == LeadStage.RECYCLED and lead.owner is None
    feedback = LeadFeedback.objects.get(lead=lead, verdict="rejected")
    assert feedback.reason.code == "no-timing" and feedback.competitor.name == "Rivalsoft"


@pytest.mark.parametrize(
    ("from_stage", "to_stage", "message"),
    [
        ("recycled", "mql", "returns to MQL when it qualifies again"),
        ("recycled", "sal", "cannot be dragged back"),
        ("sal", "mql", "does not go back to MQL"),
        ("mql", "sql", "Accept the lead first"),
        ("sql", "sal", "does not go back to SAL"),
        ("sql", "recycled", "past rejection"),
        ("sal", "sal", "already"),
    ],
)
def test_handoff_moves_without_a_transition_are_refused(revops, from_stage, to_stage, message):
    lead = make_lead(stage=from_stage)
    with pytest.raises(services.TransitionError, match=message):
        board_moves.lead_board_move(lead=lead, actor=revops, to_stage=to_stage)
    lead.refresh_from_db()
    assert lead.stage == from_stage and lead.version == 1


def test_handoff_stale_version_is_a_conflict_with_the_current_lead(rep, manager):
    make_team(manager=manager, members=[rep])
    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    board_moves.lead_board_move(lead=lead, actor=manager, to_stage="sal", expected_version=1)
    with pytest.raises(services.ConflictError) as caught:
        board_moves.lead_board_move(
            lead=Lead.objects.get(pk=lead.pk), actor=rep, to_stage="recycled", expected_version=1
        )
    assert "changed by someone else" in str(caught.value)
    assert caught.value.current.stage == LeadStage.SAL and caught.value.current.version == 2


def test_handoff_moves_follow_the_lead_permissions(rep, marketer, make_user):
    other = make_user("otto", "Sales rep")
    theirs = make_lead(stage=LeadStage.MQL, owner=other)
    for actor in (marketer, rep):
        with pytest.raises(PermissionDenied):
            board_moves.lead_board_move(lead=theirs, actor=actor, to_stage="sal")
    assert Lead.objects.get(pk=theirs.pk).stage == LeadStage.MQL


def test_deal_board_check_refuses_early_what_the_service_refuses(rep):
    won = make_opportunity(stage=OpportunityStage.WON, owner=rep)
    with pytest.raises(services.TransitionError, match="closed deals do not move"):
        board_moves.deal_board_move_check(opportunity=won, to_stage="demo", expected_version=1)
    with pytest.raises(services.TransitionError, match="closed deals do not move"):
        services.opportunity_move(opportunity=won, actor=rep, to_stage="demo")
    deal = make_opportunity(stage=OpportunityStage.DEMO, owner=rep)
    with pytest.raises(services.ConflictError):
        board_moves.deal_board_move_check(opportunity=deal, to_stage="proposal", expected_version=7)
    with pytest.raises(services.TransitionError, match="already in"):
        board_moves.deal_board_move_check(opportunity=deal, to_stage="demo", expected_version=1)


# --- Pages and fragments -----------------------------------------------------------------


@pytest.mark.parametrize("role", ["marketer", "rep", "manager", "revops"])
def test_everyone_sees_both_boards(request, client_for, role):
    user = request.getfixturevalue(role)
    make_lead(first_name="Hanna", last_name="Handoff", stage=LeadStage.MQL)
    make_opportunity(account=make_account(name="Dealco"), stage=OpportunityStage.DEMO)
    client = client_for(user)
    handoff = client.get(reverse("boards:handoff"))
    deals = client.get(reverse("boards:deals"))
    assert handoff.status_code == deals.status_code == 200
    assert "Hanna Handoff" in handoff.content.decode()
    assert "Dealco" in deals.content.decode()
    assert "HX-Request" in deals["Vary"]
    # The navigation links the boards.
    assert f'href="{reverse("boards:handoff")}"' in handoff.content.decode()


def test_deal_page_links_the_deal_board(client_for, rep):
    deal = make_opportunity(stage="demo", owner=rep)
    body = client_for(rep).get(deal.get_absolute_url()).content.decode()
    assert f'href="{reverse("boards:deals")}"' in body


def test_board_fragment_for_htmx(client_for, rep):
    make_opportunity(stage=OpportunityStage.PROPOSAL, owner=rep)
    response = client_for(rep).get(reverse("boards:deals"), headers=HTMX)
    body = response.content.decode()
    assert "<html" not in body and body.lstrip().startswith('<div id="board"')
    for stage in OpportunityStage.values:
        assert f'id="column-{stage}"' in body


def test_deal_cards_and_column_totals(client_for, rep, marketer):
    account = make_account(name="Globex")
    make_opportunity(
        account=account, stage=OpportunityStage.DEMO, amount=Decimal("1200"), owner=rep,
        is_marketing_sourced=True, expected_close_on=timezone.localdate() + timedelta(days=30),
    )  # fmt: skip
    make_opportunity(stage=OpportunityStage.DEMO, amount=Decimal("800"), owner=rep)
    make_opportunity(stage=OpportunityStage.NEGOTIATION, amount=Decimal("5000"))
    # Closed long ago: not on the board.
    make_opportunity(
        stage=OpportunityStage.WON, closed_on=timezone.localdate() - timedelta(days=200)
    )
    body = client_for(marketer).get(reverse("boards:deals")).content.decode()
    assert column_figures(body, "demo") == "2 deals · $2,000"
    assert column_figures(body, "negotiation") == "1 deal · $5,000"
    assert column_figures(body, "won") == "0 deals · $0"
    assert "Globex" in body and "Marketing-sourced" in body and "Ray" in body
    assert "in stage" in body and "Close " in body


def test_handoff_cards_show_the_response_clock(client_for, rep):
    now = timezone.now()
    make_lead(first_name="Waiting", stage=LeadStage.MQL, owner=rep, score=81,
              response_due_at=now + timedelta(hours=3, minutes=5))  # fmt: skip
    make_lead(first_name="Late", stage=LeadStage.MQL, owner=rep,
              response_due_at=now - timedelta(days=2, hours=1))  # fmt: skip
    body = client_for(rep).get(reverse("boards:handoff")).content.decode()
    assert "3h" in body and " left</span>" in body
    assert re.search(r'<span class="badge badge-bad"[^>]*>Overdue 2d 1h</span>', body)
    assert column_figures(body, "mql") == "2 leads"


def test_filters_narrow_the_board_and_live_in_the_url(client_for, rep, manager, make_user):
    team = make_team(manager=manager, members=[rep])
    other = make_user("otto", "Sales rep", first_name="Otto")
    mine = make_account(name="Mine Inc", employees=5000)
    make_opportunity(account=mine, name="Mine", stage="demo", owner=rep, amount=Decimal("50000"),
                     source_channel=Channel.WEBINAR)  # fmt: skip
    make_opportunity(account=make_account(name="Theirs Ltd", employees=20), name="Theirs",
                     stage="demo", owner=other, amount=Decimal("900"),
                     source_channel=Channel.EMAIL)  # fmt: skip
    client = client_for(rep)
    cases = {
        "owner": "me",
        "team": str(team.pk),
        "source": Channel.WEBINAR,
        "segment": "enterprise",
        "amount_min": "10000",
    }
    for key, value in cases.items():
        body = client.get(reverse("boards:deals"), {key: value}, headers=HTMX).content.decode()
        assert "Mine Inc" in body and "Theirs Ltd" not in body, key
        assert column_figures(body, "demo") == "1 deal · $50,000", key
    body = client.get(
        reverse("boards:deals"), {"amount_max": "1000"}, headers=HTMX
    ).content.decode()
    assert "Theirs Ltd" in body and "Mine Inc" not in body
    # The filters are carried into the cards' links and move forms.
    body = client.get(reverse("boards:deals"), {"owner": "me"}).content.decode()
    assert 'name="next" value="/boards/deals/?owner=me"' in body
    # A bad value narrows nothing and is reported.
    body = client.get(reverse("boards:deals"), {"amount_min": "x"}).content.decode()
    assert "Mine Inc" in body and "Theirs Ltd" in body and "errorlist" in body


def test_handoff_filters(client_for, marketer, rep):
    make_lead(first_name="Webby", stage="mql", owner=rep, source_channel=Channel.WEBINAR,
              segment="smb")  # fmt: skip
    make_lead(first_name="Mailo", stage="mql", source_channel=Channel.EMAIL, segment="enterprise")
    client = client_for(marketer)
    for params in ({"source": "webinar"}, {"segment": "smb"}, {"owner": str(rep.pk)}):
        body = client.get(reverse("boards:handoff"), params, headers=HTMX).content.decode()
        assert "Webby" in body and "Mailo" not in body, params
    body = client.get(reverse("boards:handoff"), {"owner": "none"}, headers=HTMX).content.decode()
    assert "Mailo" in body and "Webby" not in body


def test_columns_show_fifty_cards_and_page_on(client_for, rep):
    base = timezone.now() - timedelta(days=10)
    for i in range(55):
        make_opportunity(name=f"Deal {i:02d}", stage="demo", owner=rep,
                         stage_changed_at=base + timedelta(minutes=i))  # fmt: skip
    client = client_for(rep)
    body = client.get(reverse("boards:deals")).content.decode()
    demo = re.search(r'id="cards-demo".*?</ol>', body, re.S).group(0)
    assert demo.count('<li class="board-card') == 50
    assert "Deal 54" in demo and "Deal 04" not in demo  # newest arrivals first
    assert column_figures(body, "demo") == "55 deals · $550,000"
    more_url = re.search(r'<li class="board-more"><a class="btn btn-small" href="([^"]+)"', demo)
    more_url = more_url.group(1).replace("&amp;", "&")
    assert "column=demo" in more_url and "after=" in more_url
    more = client.get(more_url, headers=HTMX).content.decode()
    assert more.count('<li class="board-card') == 5 and "Deal 04" in more and "Deal 05" not in more
    assert "board-more" not in more and "<html" not in more
    # One column's fragment counts that column as the board does.
    column = client.get(reverse("boards:deals"), {"column": "demo"}, headers=HTMX).content.decode()
    assert column_figures(column, "demo") == "55 deals · $550,000"
    assert 'id="column-proposal"' not in column
    # Without JavaScript the same link is a page with that column alone.
    page = client.get(more_url).content.decode()
    assert "<html" in page and 'id="column-demo"' in page and 'id="column-lost"' not in page
    assert "The whole board" in page


# --- What a card shows (rendered in leads/board_display.py) --------------------------


def card_html(body: str, record) -> str:
    return re.search(rf'<li [^>]*id="card-{record.pk}".*?</li>', body, re.S).group(0)


def test_cards_escape_what_people_typed(client_for, rep):
    lead = make_lead(first_name="<b>Bo</b>", last_name="O'Neil & \"Co\"", stage="mql", owner=rep,
                     company="<script>alert(1)</script>")  # fmt: skip
    deal = make_opportunity(account=make_account(name="A<i>cme</i>"), name="Deal <img src=x>",
                            stage="demo", owner=rep)  # fmt: skip
    client = client_for(rep)
    card = card_html(client.get(reverse("boards:handoff")).content.decode(), lead)
    assert "<script>" not in card and "&lt;script&gt;alert(1)&lt;/script&gt;" in card
    name = "&lt;b&gt;Bo&lt;/b&gt; O&#x27;Neil &amp; &quot;Co&quot;"
    assert f">{name}</a>" in card  # the title
    assert f'<span class="visually-hidden"> {name}</span>' in card  # the move menu's name
    card = card_html(client.get(reverse("boards:deals")).content.decode(), deal)
    assert "<img" not in card and "<i>" not in card
    assert ">A&lt;i&gt;cme&lt;/i&gt;</a>" in card and "Deal &lt;img src=x&gt;" in card


def test_card_amounts_read_as_the_money_filter_says_them():
    from leads.board_display import amount
    from leads.templatetags.leads_display import money

    for value in ("0", "5", "999.99", "1000", "1234.5", "1234.567", "2500000", "1000000.01"):
        assert amount(Decimal(value)) == money(Decimal(value)), value


def test_card_dates_read_as_date_format_says_them():
    from datetime import date

    from django.utils.dateformat import format as date_format

    from leads.board_display import day

    for value in (date(2026, 1, 1), date(2026, 5, 31), date(2027, 12, 9), date(999, 9, 9)):
        assert day(value) == date_format(value, "M j, Y"), value


def test_deal_card_facts(client_for, marketer):
    from leads.templatetags.leads_display import money

    today = timezone.localdate()
    long_name = "Platform rollout for every region " * 3
    late = make_opportunity(account=make_account(name="Latecomer"), name=long_name, stage="demo",
                            amount=Decimal("1234.5"), expected_close_on=today - timedelta(days=1),
                            stage_changed_at=timezone.now() - timedelta(days=12))  # fmt: skip
    bare = make_opportunity(name="No account deal", stage="demo", amount=Decimal("0"),
                            stage_changed_at=timezone.now() - timedelta(days=1, hours=2))  # fmt: skip
    won = make_opportunity(stage="won", closed_on=today, amount=Decimal("2500000"))
    body = client_for(marketer).get(reverse("boards:deals")).content.decode()
    card = card_html(body, late)
    assert ">Latecomer</a>" in card and f">{long_name[:59]}…</div>" in card
    assert f">{money(late.amount)}</strong>" in card and "$1,234.50" in card
    assert "<span>Unassigned</span>" in card and "<span>12 days in stage</span>" in card
    assert (
        f'title="The expected close date has passed">Close {today - timedelta(days=1):%b} ' in card
    )
    assert "badge-marketing" not in card and "data-movable" not in card
    card = card_html(body, bare)
    assert ">No account deal</a>" in card and '<div class="board-card-sub">No account</div>' in card
    assert ">$0</strong>" in card and "1 day in stage" in card and "No close date" in card
    card = card_html(body, won)
    assert ">$2,500,000</strong>" in card and f"Closed {today:%b} {today.day}, {today.year}" in card
    assert "today in stage" in card


def test_lead_card_facts(client_for, rep, revops):
    now = timezone.now()
    met = make_lead(first_name="", last_name="", email="only@mail.example", company="",
                    company_domain="mail.example", stage="sal", owner=rep, score=45,
                    source_channel="", response_due_at=now - timedelta(hours=1),
                    first_contact_at=now - timedelta(hours=2))  # fmt: skip
    plain = make_lead(email="plain@gmail.com", company="", stage="mql", score=75,
                      source_channel=Channel.WEBINAR)  # fmt: skip
    qualified = make_lead(stage="sql", owner=rep, score=10)
    body = client_for(revops).get(reverse("boards:handoff")).content.decode()
    card = card_html(body, met)
    assert (
        ">only@mail.example</a>" in card
        and '<span class="badge badge-warn" title="Score">45' in card
    )
    assert '<div class="board-card-sub">mail.example</div>' in card
    assert "<span>Ray</span>" in card and '<span class="muted">No source</span>' in card
    assert '<span class="badge badge-ok">Contacted in time</span>' in card
    card = card_html(body, plain)
    assert '<span class="badge badge-ok" title="Score">75' in card and ">—</div>" in card
    assert "Unassigned" in card and ">Webinar</span>" in card
    assert "badge-brand" not in card and "Overdue" not in card  # no clock running
    # An SQL lead converts on its page: the menu says so instead of offering moves.
    card = card_html(body, qualified)
    assert "?do=convert" in card and 'name="to_stage"' not in card
    assert '<span class="badge " title="Score">10' in card


# --- Moving cards --------------------------------------------------------------------


def test_move_with_htmx_rerenders_both_columns(client_for, rep):
    deal = make_opportunity(stage="demo", owner=rep, amount=Decimal("3000"))
    make_opportunity(stage="proposal", owner=rep, amount=Decimal("1000"))
    response = client_for(rep).post(
        deal_move_url(deal),
        {"to_stage": "proposal", "from_stage": "demo", "version": 1},
        headers={**HTMX, "HX-Current-URL": "http://testserver/boards/deals/?owner=me"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "0 deals · $0" in column_figures(body, "demo")
    assert column_figures(body, "proposal") == "2 deals · $4,000"
    assert f'id="card-{deal.pk}"' in oob_column(body, "proposal")
    assert f'id="card-{deal.pk}"' not in oob_column(body, "demo")
    assert "moved to Proposal" in body and 'id="board-messages" hx-swap-oob' in body
    assert "board:sync" in response["HX-Trigger-After-Settle"]
    assert "?owner=me" in body  # the page's filters carry on
    deal.refresh_from_db()
    assert deal.stage == "proposal" and deal.version == 2
    assert OpportunityStageChange.objects.filter(opportunity=deal, to_stage="proposal").exists()


def test_lost_asks_for_a_reason_first_and_nothing_moves_without_it(client_for, rep):
    deal = make_opportunity(stage="demo", owner=rep)
    client = client_for(rep)
    ask = client.post(deal_move_url(deal), {"to_stage": "lost", "version": 1}, headers=HTMX)
    body = ask.content.decode()
    assert 'id="board-dialog-body" hx-swap-oob="innerHTML"' in body
    assert "Why was it lost?" in body and 'name="details" value="1"' in body
    assert "board:dialog-open" in ask["HX-Trigger-After-Settle"]
    assert Opportunity.objects.get(pk=deal.pk).stage == "demo"

    missing = client.post(
        deal_move_url(deal), {"to_stage": "lost", "version": 1, "details": "1"}, headers=HTMX
    )
    assert missing.status_code == 200 and "This field is required" in missing.content.decode()
    assert Opportunity.objects.get(pk=deal.pk).stage == "demo"

    competitor = make_competitor("Initrode")
    done = client.post(
        deal_move_url(deal),
        {"to_stage": "lost", "from_stage": "demo", "version": 1, "details": "1",
         "loss_reason": reason("price").pk, "competitor": competitor.pk,
         "loss_note": "Half the price."},
        headers=HTMX,
    )  # fmt: skip
    assert "board:dialog-close" in done["HX-Trigger-After-Settle"]
    assert f'id="card-{deal.pk}"' in oob_column(done.content.decode(), "lost")
    deal.refresh_from_db()
    assert deal.stage == "lost" and deal.loss_reason.code == "price"
    assert deal.competitor == competitor and deal.closed_on == timezone.localdate()


def test_won_asks_for_the_final_amount_and_close_date(client_for, rep):
    deal = make_opportunity(stage="negotiation", owner=rep, amount=Decimal("7000"))
    client = client_for(rep)
    ask = client.post(deal_move_url(deal), {"to_stage": "won", "version": 1}, headers=HTMX)
    assert 'value="7000' in ask.content.decode()  # the amount so far, to confirm
    future = timezone.localdate() + timedelta(days=3)
    refused = client.post(
        deal_move_url(deal),
        {"to_stage": "won", "version": 1, "details": "1", "amount": "8000", "closed_on": future},
        headers=HTMX,
    )
    assert "cannot be in the future" in refused.content.decode()
    today = timezone.localdate()
    client.post(
        deal_move_url(deal),
        {"to_stage": "won", "version": 1, "details": "1", "amount": "8000", "closed_on": today},
        headers=HTMX,
    )
    deal.refresh_from_db()
    assert deal.stage == "won" and deal.amount == Decimal("8000") and deal.closed_on == today


def test_handoff_moves_through_the_board(client_for, rep, taxonomy):
    lead = make_lead(first_name="Moving", stage="mql", owner=rep)
    client = client_for(rep)
    accepted = client.post(
        lead_move_url(lead), {"to_stage": "sal", "from_stage": "mql", "version": 1}, headers=HTMX
    )
    assert f'id="card-{lead.pk}"' in oob_column(accepted.content.decode(), "sal")
    assert "You accepted" in accepted.content.decode()
    ask = client.post(lead_move_url(lead), {"to_stage": "recycled", "version": 2}, headers=HTMX)
    assert "Why are you rejecting it?" in ask.content.decode()
    client.post(
        lead_move_url(lead),
        {"to_stage": "recycled", "version": 2, "details": "1", "reason": reason("no-budget").pk},
        headers=HTMX,
    )
    lead.refresh_from_db()
    assert lead.stage == "recycled"


def test_refused_move_snaps_back_with_the_reason(client_for, revops):
    lead = make_lead(stage="recycled")
    response = client_for(revops).post(
        lead_move_url(lead), {"to_stage": "mql", "from_stage": "recycled", "version": 1},
        headers=HTMX,
    )  # fmt: skip
    body = response.content.decode()
    assert response.status_code == 200
    assert "A recycled lead returns to MQL when it qualifies again" in body
    assert "alert-error" in body
    assert f'id="card-{lead.pk}"' in oob_column(body, "recycled")  # back where it was
    assert f'id="card-{lead.pk}"' not in oob_column(body, "mql")


def test_reject_of_an_sql_is_refused_before_the_form_opens(client_for, revops):
    lead = make_lead(stage="sql")
    body = (
        client_for(revops)
        .post(lead_move_url(lead), {"to_stage": "recycled", "version": 1}, headers=HTMX)
        .content.decode()
    )
    assert "past rejection" in body and "board-dialog-body" not in body


def test_concurrent_moves_second_gets_a_conflict_and_the_current_card(
    client, rep, manager, django_user_model
):
    make_team(manager=manager, members=[rep])
    deal = make_opportunity(stage="demo", owner=rep)
    # Both boards show the deal at version 1.
    client.force_login(manager)
    first = client.post(
        deal_move_url(deal), {"to_stage": "negotiation", "from_stage": "demo", "version": 1},
        headers=HTMX,
    )  # fmt: skip
    assert "moved to Negotiation" in first.content.decode()
    client.force_login(rep)
    second = client.post(
        deal_move_url(deal), {"to_stage": "proposal", "from_stage": "demo", "version": 1},
        headers=HTMX,
    )  # fmt: skip
    body = second.content.decode()
    assert "was changed by someone else (it is now in Negotiation)" in body
    assert "Your move was not applied" in body
    # The card, as it is now, in its current column, flagged; nothing in proposal.
    current = oob_column(body, "negotiation")
    assert f'id="card-{deal.pk}"' in current and "board-card-flash" in current
    assert 'data-version="2"' in current
    assert f'id="card-{deal.pk}"' not in oob_column(body, "proposal")
    assert f'id="card-{deal.pk}"' not in oob_column(body, "demo")
    deal.refresh_from_db()
    assert deal.stage == "negotiation" and deal.version == 2


def test_conflict_is_reported_before_asking_for_details(client_for, rep):
    deal = make_opportunity(stage="demo", owner=rep)
    services.opportunity_move(opportunity=deal, actor=rep, to_stage="proposal")
    body = (
        client_for(rep)
        .post(deal_move_url(deal), {"to_stage": "lost", "version": 1}, headers=HTMX)
        .content.decode()
    )
    assert "changed by someone else" in body and "Why was it lost?" not in body


# --- Permissions -------------------------------------------------------------------------


def test_marketing_reads_but_cannot_move(client_for, marketer):
    deal = make_opportunity(stage="demo")
    lead = make_lead(stage="mql")
    client = client_for(marketer)
    body = client.get(reverse("boards:deals")).content.decode()
    assert "data-movable" not in body and 'class="card-menu"' not in body
    assert "moving cards is for sales" in body
    plain = client.post(deal_move_url(deal), {"to_stage": "proposal", "version": 1})
    assert plain.status_code == 403
    assert client.post(lead_move_url(lead), {"to_stage": "sal", "version": 1}).status_code == 403
    assert client.get(deal_move_url(deal), {"to": "lost"}).status_code == 403
    htmx = client.post(
        deal_move_url(deal), {"to_stage": "proposal", "from_stage": "demo", "version": 1},
        headers=HTMX,
    )  # fmt: skip
    body = htmx.content.decode()
    assert "You cannot move this deal" in body
    assert f'id="card-{deal.pk}"' in oob_column(body, "demo")  # the card back
    assert Opportunity.objects.get(pk=deal.pk).stage == "demo"


def test_rep_moves_own_cards_only(client_for, rep, make_user):
    other = make_user("otto", "Sales rep")
    mine = make_opportunity(stage="demo", owner=rep, name="Mine")
    theirs = make_opportunity(stage="demo", owner=other, name="Theirs")
    client = client_for(rep)
    body = client.get(reverse("boards:deals")).content.decode()
    mine_card = re.search(rf'<li [^>]*id="card-{mine.pk}".*?</li>', body, re.S).group(0)
    theirs_card = re.search(rf'<li [^>]*id="card-{theirs.pk}".*?</li>', body, re.S).group(0)
    assert "data-movable" in mine_card and "card-menu" in mine_card
    assert "data-movable" not in theirs_card and "card-menu" not in theirs_card
    assert client.post(deal_move_url(theirs), {"to_stage": "proposal"}).status_code == 403
    assert Opportunity.objects.get(pk=theirs.pk).stage == "demo"


def test_manager_moves_the_team_cards(client_for, rep, manager):
    make_team(manager=manager, members=[rep])
    deal = make_opportunity(stage="demo", owner=rep)
    client_for(manager).post(deal_move_url(deal), {"to_stage": "proposal", "version": 1})
    assert Opportunity.objects.get(pk=deal.pk).stage == "proposal"


def test_closed_deals_have_no_menu(client_for, revops):
    won = make_opportunity(stage="won", owner=revops)
    body = client_for(revops).get(reverse("boards:deals")).content.decode()
    card = re.search(rf'<li [^>]*id="card-{won.pk}".*?</li>', body, re.S).group(0)
    assert "data-movable" not in card and "card-menu" not in card


# --- Without JavaScript --------------------------------------------------------------------


def test_move_menu_works_without_javascript(client_for, rep):
    deal = make_opportunity(stage="demo", owner=rep)
    client = client_for(rep)
    body = client.get(reverse("boards:deals")).content.decode()
    card = re.search(rf'<li [^>]*id="card-{deal.pk}".*?</li>', body, re.S).group(0)
    assert f'action="{deal_move_url(deal)}"' in card
    assert 'name="to_stage" value="proposal"' in card and "csrfmiddlewaretoken" in card
    response = client.post(
        deal_move_url(deal),
        {"to_stage": "proposal", "version": 1, "next": "/boards/deals/?owner=me"},
    )
    assert response.status_code == 302 and response["Location"] == "/boards/deals/?owner=me"
    assert Opportunity.objects.get(pk=deal.pk).stage == "proposal"
    page = client.get(response["Location"]).content.decode()
    assert "moved to Proposal" in page  # the message on the next page


def test_lost_without_javascript_is_a_form_page(client_for, rep):
    deal = make_opportunity(stage="demo", owner=rep)
    client = client_for(rep)
    ask = client.post(deal_move_url(deal), {"to_stage": "lost", "version": 1})
    body = ask.content.decode()
    assert ask.status_code == 200 and "<html" in body and "Why was it lost?" in body
    done = client.post(
        deal_move_url(deal),
        {"to_stage": "lost", "version": 1, "details": "1", "loss_reason": reason("no-decision").pk},
    )
    assert done.status_code == 302
    assert Opportunity.objects.get(pk=deal.pk).stage == "lost"


def test_move_page_without_a_column_offers_the_moves(client_for, rep):
    deal = make_opportunity(stage="demo", owner=rep)
    body = client_for(rep).get(deal_move_url(deal)).content.decode()
    assert 'value="proposal"' in body and 'value="lost"' in body
    assert 'name="to_stage" value="demo"' not in body


def test_refused_move_without_javascript_redirects_with_the_reason(client_for, revops):
    lead = make_lead(stage="recycled")
    client = client_for(revops)
    response = client.post(lead_move_url(lead), {"to_stage": "mql", "version": 1})
    assert response.status_code == 302
    assert "cannot be dragged back" in client.get(response["Location"]).content.decode()


def test_next_must_stay_on_the_site(client_for, rep):
    deal = make_opportunity(stage="demo", owner=rep)
    response = client_for(rep).post(
        deal_move_url(deal), {"to_stage": "proposal", "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("boards:deals")


# --- Refreshing after other people's changes -----------------------------------------------


def test_column_fragments_have_the_boards_figures_and_stamps(client_for, rep):
    today = timezone.localdate()
    make_opportunity(stage="won", owner=rep, amount=Decimal("700"), closed_on=today)
    make_opportunity(stage="won", owner=rep, closed_on=today - timedelta(days=200))  # off the board
    make_opportunity(stage="demo", owner=rep, amount=Decimal("300"))
    make_lead(stage="mql", owner=rep)
    client = client_for(rep)
    for board, stages in (("boards:deals", ("won", "demo", "lost")),
                          ("boards:handoff", ("mql", "sal"))):  # fmt: skip
        page = client.get(reverse(board)).content.decode()
        stamps = dict(re.findall(r'name="stamp_(\w+)" value="([^"]+)"', page))
        for stage in stages:
            column = client.get(reverse(board), {"column": stage}, headers=HTMX).content.decode()
            assert column_figures(column, stage) == column_figures(page, stage), (board, stage)
            assert f'name="stamp_{stage}" value="{stamps[stage]}"' in column, (board, stage)
    assert column_figures(page, "mql") == "1 lead"


def test_sync_returns_only_the_columns_that_changed(client_for, rep, make_user):
    deal = make_opportunity(stage="demo", owner=rep)
    make_opportunity(stage="proposal", owner=rep)
    client = client_for(rep)
    page = client.get(reverse("boards:deals")).content.decode()
    stamps = dict(re.findall(r'name="(stamp_\w+)" value="([^"]+)"', page))
    assert set(stamps) == {f"stamp_{s}" for s in OpportunityStage.values}
    quiet = client.get(reverse("boards:deals"), {"sync": "1", **stamps}, headers=HTMX)
    assert "board-column" not in quiet.content.decode()

    # Someone else moves a deal; the next interaction brings both columns.
    services.opportunity_move(opportunity=deal, actor=rep, to_stage="negotiation")
    changed = client.get(reverse("boards:deals"), {"sync": "1", **stamps}, headers=HTMX)
    body = changed.content.decode()
    assert f'id="card-{deal.pk}"' in oob_column(body, "negotiation")
    assert 'id="column-demo"' in body
    assert 'id="column-proposal"' not in body and 'id="column-won"' not in body


def test_page_asks_for_a_sync_on_focus_and_after_moves(client_for, rep):
    body = client_for(rep).get(reverse("boards:deals")).content.decode()
    sync = re.search(r'<div id="board-sync"[^>]*>', body, re.S).group(0)
    assert "focus from:window" in sync and "board:sync from:body" in sync
    assert 'hx-include="#board-filters, .board-stamp"' in sync


# --- Query counts ------------------------------------------------------------------------------


def _queries(client, url, **kwargs):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **kwargs)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("board", ["boards:deals", "boards:handoff"])
def test_board_query_count_does_not_grow_with_cards(client_for, rep, manager, board):
    make_team(manager=manager, members=[rep])
    client = client_for(manager)
    url = reverse(board)

    def add(n):
        for i in range(n):
            account = make_account()
            for stage in ("discovery", "demo", "won"):
                make_opportunity(stage=stage, owner=rep if i % 2 else manager, account=account)
            for stage in ("mql", "sal", "recycled"):
                make_lead(stage=stage, owner=rep if i % 2 else None)

    add(2)
    few = {
        "page": _queries(client, url),
        "fragment": _queries(client, url, headers=HTMX),
        "column": _queries(client, url + "?column=demo", headers=HTMX),
        "filtered": _queries(client, url + "?owner=team&segment=mid_market", headers=HTMX),
    }
    add(30)
    many = {
        "page": _queries(client, url),
        "fragment": _queries(client, url, headers=HTMX),
        "column": _queries(client, url + "?column=demo", headers=HTMX),
        "filtered": _queries(client, url + "?owner=team&segment=mid_market", headers=HTMX),
    }
    assert many == few
    # Page: session, user, roles, the manager's team, sellers and teams for the
    # filters, one grouped count for all columns, one query per column,
    # unread notifications.
    assert few["page"] <= 6 + len(board_columns(board)) + 2


def board_columns(board):
    from leads.board_selectors import DEAL_COLUMNS, HANDOFF_COLUMNS

    return DEAL_COLUMNS if board == "boards:deals" else HANDOFF_COLUMNS


def test_move_query_count_does_not_grow_with_cards(client_for, rep):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(rep)

    def move(deal):
        with CaptureQueriesContext(connection) as queries:
            client.post(
                deal_move_url(deal), {"to_stage": "proposal", "from_stage": "demo",
                                      "version": deal.version}, headers=HTMX,
            )  # fmt: skip
        return len(queries)

    few = move(make_opportunity(stage="demo", owner=rep))
    for _ in range(40):
        make_opportunity(stage="demo", owner=rep)
        make_opportunity(stage="proposal", owner=rep)
    assert move(make_opportunity(stage="demo", owner=rep)) == few

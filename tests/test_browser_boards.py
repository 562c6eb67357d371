"""The pipeline boards in a real browser: dragging deals (to lost through the
reason dialog) with the column totals following, moving leads from the
keyboard menu, a refused drag going back, and the board catching up with
another user's change when the window regains focus."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from leads import services
from leads.models import Lead, LeadFeedback, LeadStage, Opportunity, OpportunityStage
from tests.conftest import login
from tests.factories import make_account, make_competitor, make_lead, make_opportunity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def drag(page, card, target):
    """Drag with the mouse, in steps (SortableJS runs its pointer fallback)."""
    start = card.locator(".board-card-sub").bounding_box()
    end = target.bounding_box()
    x, y = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 8, y + 8, steps=4)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 40, steps=25)
    page.mouse.up()


def settled(page):
    """Wait until htmx has swapped in and processed what the last answer
    sent (until then a swapped-in card's menu is a plain form)."""
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-added")).to_have_count(0)


def figures(page, stage):
    return page.locator(f"#column-{stage} .board-figures")


def test_rep_drags_a_deal_to_proposal_then_to_lost(page, rep, taxonomy):
    deal = make_opportunity(
        account=make_account(name="Initech"), name="Initech platform", stage="demo",
        owner=rep, amount=Decimal("12000"),
    )  # fmt: skip
    make_opportunity(stage="demo", owner=rep, amount=Decimal("3000"))
    make_opportunity(stage="proposal", owner=rep, amount=Decimal("5000"))
    make_competitor("Initrode")

    login(page, "ray")
    page.get_by_role("link", name="Boards", exact=True).first.click()
    page.get_by_role("link", name="Deal board").click()
    expect(page.get_by_role("heading", name="Deal board", level=1)).to_be_visible()
    expect(figures(page, "demo")).to_have_text("2 deals · $15,000")
    expect(figures(page, "proposal")).to_have_text("1 deal · $5,000")

    card = page.locator(f"#card-{deal.pk}")
    drag(page, card, page.locator("#cards-proposal"))
    expect(page.locator(f"#cards-proposal #card-{deal.pk}")).to_be_visible()
    expect(figures(page, "proposal")).to_have_text("2 deals · $17,000")
    expect(figures(page, "demo")).to_have_text("1 deal · $3,000")
    expect(page.locator("#board-messages")).to_contain_text("moved to Proposal")
    assert Opportunity.objects.get(pk=deal.pk).stage == OpportunityStage.PROPOSAL

    # To lost: the card goes back and the dialog asks why; nothing moves yet.
    drag(page, page.locator(f"#card-{deal.pk}"), page.locator("#cards-lost"))
    dialog = page.locator("#board-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_contain_text("Mark Initech platform lost")
    expect(page.locator(f"#cards-proposal #card-{deal.pk}")).to_be_attached()
    assert Opportunity.objects.get(pk=deal.pk).stage == OpportunityStage.PROPOSAL
    dialog.get_by_role("button", name="Mark lost").click()
    expect(dialog).to_contain_text("This field is required")  # still open, with the error
    dialog.get_by_label("Why was it lost?").select_option(label="Price")
    dialog.get_by_label("Lost to").select_option(label="Initrode")
    dialog.get_by_label("Note").fill("They came in at half our price.")
    dialog.get_by_role("button", name="Mark lost").click()

    expect(dialog).to_be_hidden()
    expect(page.locator(f"#cards-lost #card-{deal.pk}")).to_be_visible()
    expect(figures(page, "lost")).to_have_text("1 deal · $12,000")
    expect(figures(page, "proposal")).to_have_text("1 deal · $5,000")
    expect(page.locator("#board-messages")).to_contain_text("lost (Price)")
    deal.refresh_from_db()
    assert deal.stage == OpportunityStage.LOST and deal.loss_reason.label == "Price"
    assert deal.competitor.name == "Initrode"
    # A lost deal stays where it is: no handle, no menu.
    expect(page.locator(f"#card-{deal.pk} .card-menu")).to_have_count(0)


def test_rep_works_leads_from_the_keyboard_and_a_refused_drag_goes_back(page, rep, taxonomy):
    lead = make_lead(first_name="Kim", last_name="Keys", stage=LeadStage.MQL, owner=rep)
    other = make_lead(first_name="Dana", last_name="Drag", stage=LeadStage.MQL, owner=rep)

    login(page, "ray")
    page.goto("/boards/")
    expect(page.get_by_role("heading", name="Handoff board", level=1)).to_be_visible()
    expect(figures(page, "mql")).to_have_text("2 leads")

    # A drag no transition allows: back in MQL, with the reason.
    drag(page, page.locator(f"#card-{other.pk}"), page.locator("#cards-sql"))
    expect(page.locator("#board-messages")).to_contain_text("Accept the lead first")
    expect(page.locator(f"#cards-mql #card-{other.pk}")).to_be_visible()
    assert Lead.objects.get(pk=other.pk).stage == LeadStage.MQL
    settled(page)

    # The move menu, by keyboard only.
    menu = page.locator(f"#card-{lead.pk} summary")
    menu.focus()
    page.keyboard.press("Enter")
    accept = page.locator(f"#card-{lead.pk}").get_by_role("button", name="Accept (to SAL)")
    accept.focus()
    page.keyboard.press("Enter")
    expect(page.locator(f"#cards-sal #card-{lead.pk}")).to_be_visible()
    expect(page.locator("#board-messages")).to_contain_text("You accepted Kim Keys")
    expect(figures(page, "sal")).to_have_text("1 lead")
    # The keyboard stays on the card that moved.
    expect(page.locator(f"#card-{lead.pk} summary")).to_be_focused()
    settled(page)

    page.keyboard.press("Enter")
    reject = page.locator(f"#card-{lead.pk}").get_by_role("button", name="Reject… (to Recycled)")
    reject.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#board-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Why are you rejecting it?").select_option(label="No budget")
    dialog.get_by_role("button", name="Reject and return to marketing").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(f"#cards-recycled #card-{lead.pk}")).to_be_visible()
    assert LeadFeedback.objects.filter(lead=lead, verdict="rejected").exists()


def test_board_catches_up_with_another_users_move_on_focus(page, rep, manager, taxonomy):
    from tests.factories import make_team

    make_team(manager=manager, members=[rep])
    deal = make_opportunity(stage="discovery", owner=rep, amount=Decimal("4000"))
    theirs = make_opportunity(stage="demo", owner=manager, amount=Decimal("700"))

    login(page, "ray")
    page.goto("/boards/deals/")
    expect(figures(page, "discovery")).to_have_text("1 deal · $4,000")

    # The manager moves it elsewhere; the rep's board learns on the next focus.
    services.opportunity_move(opportunity=deal, actor=manager, to_stage="negotiation")
    page.evaluate("window.dispatchEvent(new Event('focus'))")
    expect(page.locator(f"#cards-negotiation #card-{deal.pk}")).to_be_visible()
    expect(figures(page, "discovery")).to_have_text("0 deals · $0")
    expect(figures(page, "negotiation")).to_have_text("1 deal · $4,000")

    # Filters update the board in place and live in the URL.
    expect(page.locator(f"#card-{theirs.pk}")).to_be_visible()
    page.get_by_label("Owner").select_option(label="Me")
    expect(page.locator(f"#card-{theirs.pk}")).to_have_count(0)
    expect(figures(page, "demo")).to_have_text("0 deals · $0")
    expect(page).to_have_url(re.compile(r"owner=me"))
    page.reload()
    expect(page.get_by_label("Owner")).to_have_value("me")
    expect(page.locator(f"#card-{theirs.pk}")).to_have_count(0)


def test_a_long_column_loads_more_cards_when_scrolled(page, marketer):
    for i in range(60):
        make_opportunity(name=f"Scroll deal {i:02d}", stage="demo")
    login(page, "mia")
    page.goto("/boards/deals/")
    cards = page.locator("#cards-demo > li.board-card")
    expect(cards).to_have_count(50)
    page.locator("#cards-demo").evaluate("list => { list.scrollTop = list.scrollHeight; }")
    expect(cards).to_have_count(60)
    expect(page.locator("#cards-demo .board-more")).to_have_count(0)
    expect(figures(page, "demo")).to_have_text("60 deals · $600,000")

"""htmx requests that fail in a real browser: the page says so in its message
area (or in the dialog the request came from) instead of silently not
changing, and the message goes once the server answers again. Board cards
keep their own handling (the card goes back, the board explains)."""

import re

import pytest
from playwright.sync_api import expect

from leads import services
from leads.models import LeadStage, Opportunity, OpportunityStage
from tests.conftest import login
from tests.factories import make_lead, make_opportunity, make_team
from tests.test_browser_boards import drag

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNAVAILABLE = "The server could not complete that (503). Try again in a moment."
UNREACHABLE = "Could not reach the server. Check your connection and try again."
REFUSED = "You are not allowed to do that (403)."

# What htmx (and the browser) log for the failures these tests cause on purpose.
EXPECTED_CONSOLE_ERRORS = re.compile(
    r"^(Response Status Error Code (403|503) from "
    r"|htmx:(afterRequest|responseError|sendError)\b"
    r"|Failed to load resource: (the server responded with a status of (403|503)|net::ERR_FAILED))"
)


@pytest.fixture
def page(browser, live_server):
    """The conftest page, except that the failures a test causes on purpose
    may be logged; any other console error, CSP violation or JavaScript
    exception still fails the test."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    unexpected = []
    page.on("pageerror", lambda error: unexpected.append(str(error)))
    page.on(
        "console",
        lambda message: (
            unexpected.append(message.text)
            if message.type == "error" and not EXPECTED_CONSOLE_ERRORS.match(message.text)
            else None
        ),
    )
    yield page
    context.close()
    assert not unexpected, f"JavaScript errors or CSP violations in the browser: {unexpected}"


def unavailable(route):
    route.fulfill(
        status=503,
        headers={"Retry-After": "5", "Content-Type": "text/html"},
        body="<h1>Accord is back in a moment</h1>",
    )


def failure_notices(page):
    return page.locator("[data-request-failed]")


def test_an_action_the_server_cannot_complete_says_so_and_the_retry_works(page, rep):
    lead = make_lead(first_name="Ada", last_name="Byron", stage=LeadStage.MQL, owner=rep)
    login(page, "ray")
    page.goto(lead.get_absolute_url())
    page.route(f"**/leads/{lead.pk}/accept/", unavailable)
    page.get_by_role("button", name="Accept").click()
    expect(page.locator("#messages")).to_contain_text(UNAVAILABLE)
    expect(page.get_by_role("alert")).to_have_text(UNAVAILABLE)
    lead.refresh_from_db()
    assert lead.stage == LeadStage.MQL

    page.unroute(f"**/leads/{lead.pk}/accept/")  # the server is back
    page.get_by_role("button", name="Accept").click()
    expect(page.locator("#lead-main .alert-success")).to_contain_text("You accepted")
    expect(failure_notices(page)).to_have_count(0)
    lead.refresh_from_db()
    assert lead.stage == LeadStage.SAL


def test_a_server_that_cannot_be_reached_is_named(page, rep):
    make_lead(first_name="Grace", last_name="Hopper", owner=rep)
    login(page, "ray")
    page.goto("/leads/")
    page.route(re.compile(r".*/leads/\?.*q=grace.*"), lambda route: route.abort())
    page.get_by_label("Search").fill("grace")
    expect(page.locator("#messages")).to_contain_text(UNREACHABLE)
    expect(failure_notices(page)).to_have_count(1)


def test_an_action_refused_since_the_page_was_shown_says_so(page, rep, manager, make_user):
    other_rep = make_user("rob", "Sales rep")
    make_team(manager=manager, members=[rep, other_rep])
    lead = make_lead(first_name="Alan", last_name="Turing", stage=LeadStage.MQL, owner=rep)
    login(page, "ray")
    page.goto(lead.get_absolute_url())
    expect(page.get_by_role("button", name="Accept")).to_be_visible()
    services.lead_assign(lead=lead, actor=manager, owner=other_rep)  # meanwhile
    page.get_by_role("button", name="Accept").click()
    expect(page.locator("#messages")).to_contain_text(REFUSED)
    lead.refresh_from_db()
    assert (lead.stage, lead.owner) == (LeadStage.MQL, other_rep)


def test_board_cards_keep_their_own_message_and_dialogs_get_theirs(page, rep, taxonomy):
    deal = make_opportunity(name="Initech platform", stage="demo", owner=rep)
    login(page, "ray")
    page.goto("/boards/deals/")
    page.route(f"**/boards/deals/{deal.pk}/move/", unavailable)

    # A dragged card: boards.js puts it back and explains on the board.
    drag(page, page.locator(f"#card-{deal.pk}"), page.locator("#cards-proposal"))
    expect(page.locator("#board-messages")).to_contain_text("The move could not be saved")
    expect(page.locator(f"#cards-demo #card-{deal.pk}")).to_be_visible()
    expect(failure_notices(page)).to_have_count(0)

    # The lost dialog's form is not a card: the message shows in the dialog,
    # above the page it covers.
    page.unroute(f"**/boards/deals/{deal.pk}/move/")
    drag(page, page.locator(f"#card-{deal.pk}"), page.locator("#cards-lost"))
    dialog = page.locator("#board-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Why was it lost?").select_option(label="Price")
    page.route(f"**/boards/deals/{deal.pk}/move/", unavailable)
    dialog.get_by_role("button", name="Mark lost").click()
    expect(dialog.get_by_role("alert")).to_have_text(UNAVAILABLE)
    assert Opportunity.objects.get(pk=deal.pk).stage == OpportunityStage.DEMO

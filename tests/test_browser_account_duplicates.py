"""A RevOps admin adds an account that looks like an existing one, in a real
browser: the admin form holds it back with the look-alike named and linked,
saves it once “Save anyway” is ticked, and says so again; no console error and
no Content-Security-Policy violation (the `page` fixture fails on either)."""

import pytest
from playwright.sync_api import expect

from leads.models import Account
from tests.conftest import login
from tests.factories import make_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_adds_an_account_like_an_existing_one_after_confirming(page, revops):
    acme = make_account(name="Acme Corporation", domain="acme.com")
    login(page, "rosa")
    page.goto("/admin/leads/account/add/")
    expect(page.get_by_label("Save anyway: this is a different company")).to_have_count(0)
    page.get_by_label("Name").fill("ACME Inc.")
    page.get_by_label("Domain").fill("acme.co.uk")
    page.get_by_role("button", name="Save", exact=True).click()

    hint = page.locator(".errorlist.nonfield")
    expect(hint).to_contain_text("This looks like an existing account: Acme Corporation")
    expect(hint.get_by_role("link", name="Acme Corporation")).to_have_attribute(
        "href", f"/admin/leads/account/{acme.pk}/change/"
    )
    expect(hint.get_by_role("link", name="account page")).to_have_attribute(
        "href", acme.get_absolute_url()
    )
    assert not Account.objects.filter(name="ACME Inc.").exists()

    page.get_by_label("Save anyway: this is a different company").check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text(
        "“ACME Inc.” was saved, and it looks like an existing account: Acme Corporation"
    )
    assert Account.objects.filter(name="ACME Inc.").exists()

"""Each demo role logs in through the real login page in Chromium."""

import re

import pytest
from playwright.sync_api import expect

from config import demo
from tests.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_each_demo_role_logs_in_and_sees_the_home_page(page):
    for username, password, role in demo.demo_users_create():
        login(page, username, password)
        expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
        expect(page.locator(".usernav .who")).to_contain_text(role)
        admin_link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")
        expect(admin_link).to_have_count(1 if role == "RevOps admin" else 0)
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(re.compile(r"/login/"))


def test_wrong_password_is_refused_in_place(page):
    demo.demo_users_create()
    login(page, "rep", "not-the-password")
    expect(page.locator(".errorlist")).to_contain_text("correct username and password")


def test_notification_centre_opens_with_htmx(page):
    from django.contrib.auth import get_user_model

    from sla.services import notification_send

    demo.demo_users_create()
    rep = get_user_model().objects.get(username="rep")
    notification_send(recipient=rep, title="A lead was routed to you", email=False)
    login(page, "rep", demo.DEMO_PASSWORD)
    badge = page.locator("#notification-badge")
    expect(badge).to_have_text("1")
    page.get_by_label("Notifications").click()
    expect(page.locator("#notification-panel-body")).to_contain_text("A lead was routed to you")
    page.get_by_role("button", name="Mark all read").click()
    expect(badge).to_have_text("0")

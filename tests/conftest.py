import os

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from config import roles

PASSWORD = "correct-horse-battery"


@pytest.fixture
def make_user(db):
    """Create a user in the given role(s): make_user("rep1", roles.SALES_REP)."""
    User = get_user_model()

    def make(username, *role_names, **fields):
        fields.setdefault("email", f"{username}@example.com")
        fields.setdefault("is_staff", roles.REVOPS_ADMIN in role_names)
        user = User.objects.create_user(username=username, password=PASSWORD, **fields)
        for name in role_names:
            user.groups.add(Group.objects.get(name=name))
        return user

    return make


@pytest.fixture
def marketer(make_user):
    return make_user("mia", roles.MARKETING, first_name="Mia")


@pytest.fixture
def rep(make_user):
    return make_user("ray", roles.SALES_REP, first_name="Ray")


@pytest.fixture
def manager(make_user):
    return make_user("mona", roles.SALES_MANAGER, first_name="Mona")


@pytest.fixture
def revops(make_user):
    return make_user("rosa", roles.REVOPS_ADMIN, first_name="Rosa")


@pytest.fixture
def client_for(client):
    """Log the test client in as a user: client_for(rep).get(...)."""

    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (the system one)."""
    from tests.browser import CHROMIUM_ARGS, chromium_or_skip

    executable = chromium_or_skip()
    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # tests make between browser steps are still plain synchronous calls.
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    yield page
    context.close()
    assert not errors, f"JavaScript errors or CSP violations in the browser: {errors}"


def login(page, username, password=PASSWORD):
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


_skipped_in_ci: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and os.environ.get("CI"):
        _skipped_in_ci.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """In CI nothing may skip: a skipped test fails the run."""
    if _skipped_in_ci:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nCI forbids skipped tests; these skipped: {_skipped_in_ci}")


@pytest.fixture
def taxonomy(db):
    """The reason codes and objections a migration seeds; seeded again when a
    transactional test flushed them."""
    import importlib

    from django.apps import apps

    from leads.models import FeedbackReason

    if not FeedbackReason.objects.exists():
        importlib.import_module("leads.migrations.0002_feedback_taxonomy").seed(apps, None)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Tests create many users; a deliberately slow password hash would
    dominate their run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# Property tests: in CI the examples are derived from the test, so a run is
# reproducible; locally they are random, to keep finding new cases.
from hypothesis import settings as hypothesis_settings  # noqa: E402

hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

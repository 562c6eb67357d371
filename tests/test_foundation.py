"""The base every page stands on: settings, login, roles, layout, admin access."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.urls import path, reverse
from django.utils import timezone

from config import roles
from config import urls as config_urls
from config.models import ServiceHeartbeat
from tests.conftest import PASSWORD


def failing_view(request):
    raise RuntimeError("A bug in a view.")


# This module doubles as the URLconf of the 500 test: the project's URLs, its
# error handler, and one view that fails.
urlpatterns = [path("failing/", failing_view), *config_urls.urlpatterns]
handler500 = config_urls.handler500


def run_manage(*args, **env_overrides):
    """Run manage.py in a fresh process with a controlled environment."""
    ignored = {"DEBUG", "SECRET_KEY", "HTTPS", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in ignored}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_database_is_postgresql(db):
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("select version()")
        assert cursor.fetchone()[0].startswith("PostgreSQL")


def test_missing_secret_key_with_debug_off_fails_clearly():
    result = run_manage("check", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in result.stderr


def test_check_deploy_is_clean_under_production_settings():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="x" * 20 + "-production-like-secret-key-with-enough-entropy-0123456789",
        ALLOWED_HOSTS="accord.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_role_groups_exist_with_permissions(db):
    groups = {group.name: group for group in Group.objects.prefetch_related("permissions")}
    assert set(roles.ROLES) <= set(groups)
    admin_codenames = {p.codename for p in groups[roles.REVOPS_ADMIN].permissions.all()}
    assert {
        "add_user",
        "change_user",
        "change_periodictask",
        "view_notification",
    } <= admin_codenames
    for name in (roles.MARKETING, roles.SALES_REP, roles.SALES_MANAGER):
        codenames = {p.codename for p in groups[name].permissions.all()}
        assert codenames, name
        assert all(codename.startswith("view_") for codename in codenames), name


@pytest.mark.parametrize(
    "url",
    ["/", "/notifications/", "/password/", "/admin/"],
)
def test_pages_require_login(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "login/?next=" in response["Location"]


def test_login_page_is_public(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Log in" in response.content


def test_login_then_home_then_logout(client, rep):
    response = client.post(reverse("login"), {"username": "ray", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("home")
    body = response.content.decode()
    assert "Welcome, Ray" in body
    assert "Sales rep" in body
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_wrong_password_shows_error_in_place(client, rep):
    response = client.post(reverse("login"), {"username": "ray", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_password_change(client_for, rep):
    client = client_for(rep)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-long-passphrase-42",
            "new_password2": "a-new-long-passphrase-42",
        },
    )
    assert response.status_code == 302
    rep.refresh_from_db()
    assert rep.check_password("a-new-long-passphrase-42")


def test_layout_has_navigation_csrf_header_and_htmx(client_for, marketer):
    body = client_for(marketer).get(reverse("home")).content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in body
    assert "django_htmx/htmx-2.min.js" in body
    assert 'aria-label="Main"' in body
    assert 'id="notification-centre"' in body
    # Only RevOps admins see the admin link.
    assert reverse("admin:index") not in body


def test_content_security_policy_is_enforced_without_unsafe_inline(client_for, marketer):
    response = client_for(marketer).get(reverse("home"))
    policy = response["Content-Security-Policy"]
    script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "'nonce-" in script_src


@pytest.mark.parametrize(
    "fixture_name, allowed",
    [("marketer", False), ("rep", False), ("manager", False), ("revops", True)],
)
def test_admin_is_for_revops_admins_only(request, client_for, fixture_name, allowed):
    user = request.getfixturevalue(fixture_name)
    response = client_for(user).get(reverse("admin:index"))
    if allowed:
        assert response.status_code == 200
        assert b"Configuration back office" in response.content
    else:
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


def test_revops_sees_admin_link_and_service_status(client_for, revops):
    body = client_for(revops).get(reverse("home")).content.decode()
    assert reverse("admin:index") in body
    assert 'id="background-services"' in body
    assert "no heartbeat yet" in body


def test_a_stalled_beat_is_flagged_to_revops_admins(client_for, revops):
    seen = timezone.now() - ServiceHeartbeat.STALE_AFTER - timedelta(minutes=1)
    ServiceHeartbeat.objects.create(name="beat", seen_at=seen)
    body = client_for(revops).get(reverse("home")).content.decode()
    services = body.split('id="background-services"', 1)[1].split("</section>", 1)[0]
    assert "Beat: last seen" in services and "minutes ago" in services
    assert '<span class="badge badge-bad">stalled</span>' in services
    assert "running" not in services


def test_a_fresh_beat_shows_as_running(client_for, revops):
    ServiceHeartbeat.objects.create(name="beat", seen_at=timezone.now())
    body = client_for(revops).get(reverse("home")).content.decode()
    services = body.split('id="background-services"', 1)[1].split("</section>", 1)[0]
    assert '<span class="badge badge-ok">running</span>' in services
    assert "stalled" not in services


@pytest.mark.parametrize("fixture_name", ["marketer", "rep", "manager"])
def test_service_status_is_for_revops_admins_only(request, db, client_for, fixture_name):
    """Other roles cannot act on a stalled beat, so they are not shown it."""
    stale = timezone.now() - ServiceHeartbeat.STALE_AFTER - timedelta(minutes=1)
    ServiceHeartbeat.objects.create(name="beat", seen_at=stale)
    body = client_for(request.getfixturevalue(fixture_name)).get(reverse("home")).content.decode()
    assert 'id="background-services"' not in body and "stalled" not in body


def test_not_found_page_uses_layout(client_for, rep):
    response = client_for(rep).get("/no-such-page/")
    assert response.status_code == 404
    assert b"Page not found" in response.content
    assert b'aria-label="Main"' in response.content


def test_forbidden_page_uses_layout_and_says_why(client_for, marketer):
    response = client_for(marketer).get(reverse("audit_log"))
    assert response.status_code == 403
    assert [t.name for t in response.templates][:2] == ["403.html", "base.html"]
    body = response.content.decode()
    assert "Not allowed" in body and "The audit log is for RevOps admins." in body
    assert 'aria-label="Main"' in body  # the layout, with the user's navigation


@pytest.mark.urls(__name__)
def test_server_error_page_renders_without_a_request_context(rep, settings):
    """The 500 handler renders 500.html from nothing (the failing request's
    context may be what broke): no navigation, but the page and its styles."""
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    client.force_login(rep)
    response = client.get("/failing/")
    assert response.status_code == 500
    assert [t.name for t in response.templates] == ["500.html", "base.html"]
    body = response.content.decode()
    assert "Server error" in body and "accord/accord.css" in body
    assert 'aria-label="Main"' not in body and "A bug in a view." not in body


def test_repeated_wrong_passwords_lock_the_login_with_a_clear_message(client, rep, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "ray", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "ray", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed attempts" in response.content.decode()
    assert client.get(reverse("home")).status_code == 302  # still not logged in


def test_server_timing_header_counts_queries(client_for, rep):
    response = client_for(rep).get(reverse("home"))
    timing = response["Server-Timing"]
    assert timing.startswith("app;dur=") and 'desc="queries=' in timing


def test_state_changing_requests_need_the_csrf_token_htmx_included(rep, taxonomy):
    from django.test import Client

    from leads.models import LeadStage
    from tests.factories import make_lead

    lead = make_lead(stage=LeadStage.MQL, owner=rep)
    client = Client(enforce_csrf_checks=True)
    client.force_login(rep)
    url = reverse("leads:lead_accept", args=[lead.pk])
    refused = client.post(url, headers={"HX-Request": "true"})
    assert refused.status_code == 403
    lead.refresh_from_db()
    assert lead.stage == LeadStage.MQL
    # The layout gives htmx the token in hx-headers on <body>, sent as X-CSRFToken.
    page = client.get(lead.get_absolute_url()).content.decode()
    token = page.split('"X-CSRFToken": "', 1)[1].split('"', 1)[0]
    accepted = client.post(url, headers={"HX-Request": "true", "X-CSRFToken": token})
    assert accepted.status_code == 200
    lead.refresh_from_db()
    assert lead.stage == LeadStage.SAL

"""The back office in a real browser: a RevOps admin opens admin pages,
django-celery-beat's periodic task form included, with no console error and
no Content-Security-Policy violation (the `page` fixture fails on either)."""

import re

import pytest
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from playwright.sync_api import expect

from tests.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_periodic_task_form_explains_the_chosen_crontab_without_csp_violations(page, revops):
    every_minute = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    nightly = CrontabSchedule.objects.create(minute="0", hour="3")
    task = PeriodicTask.objects.create(
        name="Nightly sweep", task="config.tasks.beat_heartbeat", interval=every_minute
    )
    login(page, "rosa")
    page.goto(f"/admin/django_celery_beat/periodictask/{task.pk}/change/")
    expect(page.get_by_role("heading", name="Change periodic task")).to_be_visible()
    # The crontab's plain-language reading follows the choice (the package's
    # inline script did this, and the policy blocked it).
    translation_row = page.locator(".field-crontab_translation")
    expect(translation_row).to_be_hidden()
    page.locator("#id_interval").select_option("")
    page.locator("#id_crontab").select_option(str(nightly.pk))
    help_text = page.locator(".field-crontab .help")
    expect(help_text).to_contain_text("Translation: " + nightly.human_readable)
    page.locator("#id_crontab").select_option("")
    expect(help_text).not_to_contain_text("Translation:")


def test_admin_pages_open_without_console_errors(page, revops):
    login(page, "rosa")
    page.goto("/admin/")
    expect(page.get_by_role("heading", name="Configuration back office")).to_be_visible()
    for path, heading in (
        ("/admin/django_celery_beat/periodictask/add/", "Add periodic task"),
        ("/admin/django_celery_beat/periodictask/", "Select periodic task to change"),
        ("/admin/auth/user/", "Select user to change"),
        ("/admin/leads/lead/", "Select lead to change"),
        ("/admin/sla/routingrule/add/", "Add routing rule"),
        ("/admin/config/auditentry/", "Select audit entry to view"),
    ):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(heading))

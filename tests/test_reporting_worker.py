"""The reporting refresh through a real worker and broker: a late touchpoint,
committed by one process, is credited by the task another process runs, and
a second delivery of the task changes nothing; a refresh that changed the
tables is followed by the warm-up of the default views' figures."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from leads.models import Channel, LeadStageChange, Opportunity
from reporting import kpis
from reporting.figure_cache import figure_key
from reporting.models import AttributionCredit, PendingChange
from reporting.periods import ReportFilter, period_for
from reporting.rollups import refresh_state, reporting_rebuild
from reporting.tasks import reporting_refresh_run
from tests.factories import make_lead, make_touchpoint
from tests.processes import celery_process, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_late_touchpoint_is_credited_by_the_worker():
    from config.celery import app

    app.control.purge()
    now = timezone.now()
    lead = make_lead(source_channel=Channel.WEBINAR, created_at=now - timedelta(days=30))
    make_touchpoint(lead, occurred_at=now - timedelta(days=30), channel=Channel.WEBINAR)
    deal = Opportunity.objects.create(name="Deal", source_lead=lead, amount=Decimal(900),
                                      created_at=now - timedelta(days=2))  # fmt: skip
    reporting_rebuild()
    make_touchpoint(lead, occurred_at=now - timedelta(days=5), channel=Channel.PAID_SEARCH)
    assert PendingChange.objects.count() == 1
    with celery_process(
        "worker", "--pool=solo", "--without-mingle", "--without-gossip",
        f"--hostname=reporting-{uuid.uuid4().hex[:6]}@%h",
    ) as worker:  # fmt: skip
        reporting_refresh_run.delay()
        reporting_refresh_run.delay()  # a duplicate delivery
        wait_for(lambda: not PendingChange.objects.exists(), process=worker)
        credits = wait_for(
            lambda: dict(
                AttributionCredit.objects.filter(
                    opportunity=deal, model="linear", kind="pipeline"
                ).values_list("channel", "credit")
            ).get("paid_search"),
            process=worker,
        )
    assert credits == Decimal(450)
    rows = AttributionCredit.objects.filter(opportunity=deal, model="linear", kind="pipeline")
    assert rows.count() == 2  # webinar and paid search, once each


def test_the_worker_warms_the_default_views_after_a_refresh_that_changed_the_tables():
    from config.celery import app

    app.control.purge()
    now = timezone.now()
    lead = make_lead(source_channel=Channel.WEBINAR, created_at=now - timedelta(hours=2))
    LeadStageChange.objects.create(lead=lead, from_stage="new", to_stage="mql", changed_at=now)
    flt = ReportFilter(period=period_for("quarter", today=timezone.localdate()))
    key = figure_key(kpis.funnel.uncached, (flt,), {})
    with celery_process(
        "worker", "--pool=solo", "--without-mingle", "--without-gossip",
        f"--hostname=reporting-{uuid.uuid4().hex[:6]}@%h",
    ) as worker:  # fmt: skip
        reporting_refresh_run.delay()
        wait_for(lambda: not PendingChange.objects.exists(), process=worker)
        assert refresh_state().generation > 0

        def warmed():
            entry = cache.get(key)
            return entry if entry and entry[0] == refresh_state().figures_tag else None

        # The follow-up task stored the default views' figures under the tables' generation.
        entry = wait_for(warmed, process=worker)
    assert entry[1] == kpis.funnel.uncached(flt)

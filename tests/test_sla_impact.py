"""The impact preview's figures are kept: cached under the draft's whole
content (so any edit, however it is made, is evaluated afresh), computed by a
worker after a draft is saved, re-evaluated on demand, and read back in a
number of queries that does not grow with the leads."""

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from sla import editor, impact, tasks, versions
from sla.models import (
    BehaviourCriterion,
    EngagementGroup,
    EngagementRule,
    FitRule,
    IcpVersion,
    Persona,
    SlaVersion,
)
from tests.factories import make_account, make_lead, make_touchpoint
from tests.sla_factories import make_icp, make_sla

HTMX = {"HX-Request": "true"}


def _lead_at_the_threshold(**fields):
    """Fit 40 (software, enterprise, 1000+ employees) and five page views (10
    points, and the pricing-page behaviour): 50, exactly the threshold."""
    account = make_account(industry="software", employees=5000)
    lead = make_lead(account=account, employees=5000, segment="enterprise", **fields)
    for _ in range(5):
        make_touchpoint(lead, type="page_view")
    return lead


@pytest.fixture
def agreement(db, marketer):
    """SLA v1 (threshold 50, the pricing-page behaviour) and ICP v1 in force, a
    draft of each, and one lead that qualifies under all of them."""
    cache.clear()
    sla = make_sla(criteria=[("Pricing page 3+ in 7 days", ["page_view"], 3, 7)])
    icp = make_icp()
    lead = _lead_at_the_threshold(first_name="Tess", last_name="Hold")
    return {
        "sla": sla,
        "icp": icp,
        "lead": lead,
        "sla_draft": versions.sla_draft_create(actor=marketer),
        "icp_draft": versions.icp_draft_create(actor=marketer),
    }


@pytest.fixture
def evaluated(monkeypatch):
    """The (SLA, ICP, lead count) of every evaluation the preview runs."""
    calls = []
    real_evaluate = impact.evaluate

    def counting_evaluate(lead_ids, **kwargs):
        calls.append((kwargs["sla"], kwargs["icp"], len(lead_ids)))
        return real_evaluate(lead_ids, **kwargs)

    monkeypatch.setattr(impact, "evaluate", counting_evaluate)
    return calls


def _preview(draft):
    key = "draft_sla" if isinstance(draft, SlaVersion) else "draft_icp"
    return impact.impact_preview(**{key: draft})


# --- Cached under the draft's whole content ---------------------------------------------------

# Each edit is made with QuerySet.update(), as SQL or a careless admin would:
# no save(), no signal, no timestamp. `flips`: the lead no longer qualifies.
SLA_EDITS = {
    "the threshold": (lambda d: SlaVersion.objects.filter(pk=d.pk).update(mql_threshold=51), True),
    "a rule's points": (
        lambda d: EngagementRule.objects.filter(version=d, touchpoint_type="page_view").update(
            points=1
        ),
        True,
    ),
    "a group's cap": (
        lambda d: EngagementGroup.objects.filter(version=d, name="web").update(cap=5),
        True,
    ),
    "a behavioural criterion": (
        lambda d: BehaviourCriterion.objects.filter(version=d).update(min_count=6),
        True,
    ),
    "the commitment": (
        lambda d: SlaVersion.objects.filter(pk=d.pk).update(mql_commitment_per_month=7),
        False,
    ),
    "the calendar": (
        lambda d: SlaVersion.objects.filter(pk=d.pk).update(
            calendar_time_zone="Europe/Berlin", holidays=["2026-12-24"]
        ),
        False,
    ),
}
ICP_EDITS = {
    "the maximum fit": (
        lambda d: IcpVersion.objects.filter(pk=d.pk).update(max_fit_points=30),
        True,
    ),
    "a fit rule's points": (
        lambda d: FitRule.objects.filter(version=d, attribute="industry").update(points=5),
        True,
    ),
    "a persona's titles": (
        lambda d: Persona.objects.filter(version=d, name="IT leader").update(
            title_keywords=["chief"]
        ),
        False,
    ),
}
EDITS = [("sla_draft", name, *edit) for name, edit in SLA_EDITS.items()] + [
    ("icp_draft", name, *edit) for name, edit in ICP_EDITS.items()
]


@pytest.mark.parametrize(
    "which, name, edit, flips", EDITS, ids=[f"{which}-{name}" for which, name, *_ in EDITS]
)
def test_any_edit_of_the_draft_is_evaluated_afresh(agreement, evaluated, which, name, edit, flips):
    draft = agreement[which]
    before = _preview(draft)
    assert before["totals"] == {"leads": 1, "draft": 1, "current": 1}
    evaluated.clear()
    assert _preview(draft)["totals"] == before["totals"]
    assert evaluated == []  # cached

    edit(draft)
    draft.refresh_from_db()
    after = _preview(draft)

    assert [call[:2] for call in evaluated] == [
        (draft, agreement["icp"]) if which == "sla_draft" else (agreement["sla"], draft)
    ]  # the draft again; the in-force side comes from its own cache
    if flips:
        assert after["totals"] == {"leads": 1, "draft": 0, "current": 1}
        assert [lead.pk for lead in after["lost"]] == [agreement["lead"].pk]
    else:
        assert after["totals"] == before["totals"]
    if name == "the commitment":
        assert {row["draft_commitment"] for row in after["months"]} == {7}
    evaluated.clear()
    assert _preview(draft)["totals"] == after["totals"]
    assert evaluated == []  # the edited draft is cached in turn


def test_the_fingerprint_covers_every_row_and_only_its_own_draft(agreement, marketer):
    draft = agreement["sla_draft"]
    other = versions.sla_draft_create(actor=marketer)
    fingerprint = impact.version_fingerprint(draft)
    assert impact.version_fingerprint(draft) == fingerprint  # stable
    assert impact.version_fingerprint(other) != fingerprint  # another row, other ids
    EngagementRule.objects.filter(version=other).update(points=3)
    assert impact.version_fingerprint(draft) == fingerprint
    EngagementRule.objects.filter(version=draft, touchpoint_type="demo_request").delete()
    assert impact.version_fingerprint(draft) != fingerprint


def test_leads_created_since_are_counted_in_alone(agreement, evaluated):
    draft, sla, icp = agreement["sla_draft"], agreement["sla"], agreement["icp"]
    first = _preview(draft)
    evaluated.clear()
    newcomer = _lead_at_the_threshold()
    second = _preview(draft)
    assert evaluated == [(draft, icp, 1), (sla, icp, 1)]  # only the newcomer, on both sides
    assert second["totals"] == {"leads": 2, "draft": 2, "current": 2}
    assert second["as_of"] == first["as_of"]  # what was counted stays as of then
    evaluated.clear()
    assert _preview(draft)["totals"]["leads"] == 2
    assert evaluated == []
    assert newcomer.pk > agreement["lead"].pk


def test_a_publish_puts_other_versions_in_force_hence_other_figures(
    agreement, evaluated, marketer, revops
):
    _preview(agreement["sla_draft"])
    versions.version_publish(version=agreement["sla_draft"], actor=revops, changelog="Same.")
    evaluated.clear()
    following = versions.sla_draft_create(actor=marketer)
    EngagementRule.objects.filter(version=following, touchpoint_type="page_view").update(points=1)
    result = _preview(following)
    assert result["current_sla"] == agreement["sla_draft"]
    assert result["totals"] == {"leads": 1, "draft": 0, "current": 1}
    assert [call[0] for call in evaluated] == [following, agreement["sla_draft"]]


# --- Computed by a worker after a draft is saved ----------------------------------------------


@pytest.fixture
def sent(monkeypatch):
    """The impact tasks sent to the broker, as (kind, version id)."""
    calls = []
    monkeypatch.setattr(
        tasks.impact_preview_prepare_run,
        "apply_async",
        lambda args=(), kwargs=None, **options: calls.append(tuple(args)),
    )
    return calls


def test_the_task_is_idempotent_and_acknowledged_late():
    assert tasks.impact_preview_prepare_run.acks_late


@pytest.mark.django_db(transaction=True)  # commits for real: the callbacks run
def test_a_section_save_sends_one_task_after_commit(client_for, marketer, agreement, sent):
    draft = agreement["sla_draft"]
    rules = list(EngagementRule.objects.filter(version=draft).order_by("pk"))
    prefix = "rules-rows"
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rules)),
        f"{prefix}-INITIAL_FORMS": str(len(rules)),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, rule in enumerate(rules):
        data |= {
            f"{prefix}-{index}-id": str(rule.pk),
            f"{prefix}-{index}-touchpoint_type": rule.touchpoint_type,
            f"{prefix}-{index}-asset_stage": rule.asset_stage,
            f"{prefix}-{index}-points": str(rule.points + 1),  # every row changes
            f"{prefix}-{index}-group": str(rule.group_id),
        }
    sent.clear()
    url = reverse("sla:sla_section_save", args=[draft.pk, "rules"])
    response = client_for(marketer).post(url, data, headers=HTMX)
    assert response.status_code == 200 and "Saved" in response.text
    points = dict(EngagementRule.objects.filter(version=draft).values_list("pk", "points"))
    assert points == {rule.pk: rule.points + 1 for rule in rules}
    assert sent == [("sla", draft.pk)]  # one task for five rows


def _fields_edit(a, actor):
    versions.version_update(version=a["sla_draft"], actor=actor, data={"mql_threshold": 40})
    return ("sla", a["sla_draft"].pk)


def _draft_create(a, actor):
    return ("icp", versions.icp_draft_create(actor=actor).pk)


def _part_edit(a, actor):
    persona = a["icp_draft"].personas.first()
    editor.persona_save(
        version=a["icp_draft"], actor=actor, data={"summary": "Owns the budget."}, persona=persona
    )
    return ("icp", a["icp_draft"].pk)


def _part_delete(a, actor):
    editor.part_delete(part=a["icp_draft"].personas.first(), actor=actor)
    return ("icp", a["icp_draft"].pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "write",
    [_fields_edit, _draft_create, _part_edit, _part_delete],
    ids=["fields", "a new draft", "a part", "a deletion"],
)
def test_every_draft_write_sends_the_task_after_commit(agreement, marketer, sent, write):
    sent.clear()
    with transaction.atomic():
        job = write(agreement, marketer)
        assert sent == []  # not before the commit
    assert sent == [job]


def test_the_figures_request_finds_what_the_task_computed(
    client_for, marketer, agreement, evaluated
):
    draft = agreement["sla_draft"]
    versions.version_update(version=draft, actor=marketer, data={"mql_threshold": 51})
    tasks.impact_preview_prepare_run("sla", draft.pk)  # what the worker runs
    assert [call[0] for call in evaluated] == [draft, agreement["sla"]]
    evaluated.clear()
    tasks.impact_preview_prepare_run("sla", draft.pk)  # redelivered: nothing to do
    assert evaluated == []

    response = client_for(marketer).get(reverse("sla:sla_impact", args=[draft.pk]), headers=HTMX)
    assert evaluated == []
    assert "Would no longer qualify (1)" in response.text


def test_the_task_skips_a_version_that_is_no_longer_a_draft(agreement, revops, evaluated):
    draft = agreement["sla_draft"]
    versions.version_publish(version=draft, actor=revops, changelog="Same.")
    assert not impact.impact_preview_prepare(kind="sla", version_id=draft.pk)
    assert not impact.impact_preview_prepare(kind="icp", version_id=10**9)
    assert evaluated == []


def test_without_a_worker_the_request_computes_the_figures(client_for, rep, agreement, evaluated):
    draft = agreement["icp_draft"]
    response = client_for(rep).get(reverse("sla:icp_impact", args=[draft.pk]), headers=HTMX)
    assert response.status_code == 200 and "MQLs under the draft" in response.text
    assert [call[1] for call in evaluated] == [draft, agreement["icp"]]


# --- As of, and re-evaluated on demand -------------------------------------------------------


def test_the_figures_say_as_of_when_and_offer_a_re_evaluation(
    client_for, marketer, manager, revops, rep, agreement
):
    url = reverse("sla:sla_impact", args=[agreement["sla_draft"].pk])
    for user in (marketer, manager, revops):
        text = client_for(user).get(url, headers=HTMX).text
        assert 'id="impact-draft-as-of">as of <time' in text
        assert 'id="impact-current-as-of">as of <time' in text
        assert f'hx-post="{url}"' in text and "Re-evaluate now" in text
    text = client_for(rep).get(url, headers=HTMX).text
    assert "as of <time" in text and "Re-evaluate now" not in text


def test_re_evaluating_scores_both_sides_afresh(client_for, marketer, agreement, evaluated):
    draft, sla, icp = agreement["sla_draft"], agreement["sla"], agreement["icp"]
    url = reverse("sla:sla_impact", args=[draft.pk])
    client = client_for(marketer)
    client.get(url, headers=HTMX)
    evaluated.clear()

    response = client.post(url, headers=HTMX)
    assert response.status_code == 200 and "<html" not in response.text
    assert 'id="impact-figures"' in response.text and "MQLs under the draft" in response.text
    assert evaluated == [(draft, icp, 1), (sla, icp, 1)]

    evaluated.clear()  # without JavaScript: back to the page with its figures, as computed
    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == f"{url}?figures=1"
    assert len(evaluated) == 2
    evaluated.clear()
    assert "MQLs under the draft" in client.get(response["Location"]).text
    assert evaluated == []


def test_only_those_who_edit_drafts_re_evaluate(client_for, rep, agreement, evaluated):
    url = reverse("sla:sla_impact", args=[agreement["sla_draft"].pk])
    assert client_for(rep).post(url, headers=HTMX).status_code == 403
    assert evaluated == []


def test_re_evaluating_a_version_published_meanwhile_goes_back_to_the_page(
    client_for, marketer, revops, agreement, evaluated
):
    draft = agreement["sla_draft"]
    versions.version_publish(version=draft, actor=revops, changelog="Same.")
    url = reverse("sla:sla_impact", args=[draft.pk])
    response = client_for(marketer).post(url, headers=HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == url
    assert client_for(marketer).post(url)["Location"] == url
    assert evaluated == []


# --- Query counts ------------------------------------------------------------------------------


def _figures_queries(client, url):
    client.get(url, headers=HTMX)  # computes, or counts in the leads created since
    with CaptureQueriesContext(connection) as context:
        response = client.get(url, headers=HTMX)
    assert response.status_code == 200 and "MQLs under the draft" in response.text
    return len(context.captured_queries)


def test_cached_figures_take_as_many_queries_whatever_the_leads(
    client_for, marketer, agreement, monkeypatch
):
    """Per request: session, user, the draft, the SLA and the ICP in force,
    the draft's fingerprint, the cache, the leads created since (none), the
    sampled leads, the user's groups (may they publish, re-evaluate).
    Evaluating takes queries per chunk of leads; reading the figures back
    does not."""
    monkeypatch.setattr(impact, "CHUNK_SIZE", 2)
    draft = agreement["sla_draft"]
    versions.version_update(version=draft, actor=marketer, data={"mql_threshold": 45})

    def gainer():
        """46: MQL under the draft's 45, not under v1's 50."""
        lead = make_lead(account=make_account(industry="software", employees=5000),
                         employees=5000, segment="enterprise")  # fmt: skip
        for _ in range(3):
            make_touchpoint(lead, type="page_view")
        make_lead(title="Student", employees=3)  # and one that qualifies nowhere

    gainer()
    client = client_for(marketer)
    url = reverse("sla:sla_impact", args=[draft.pk])
    small = _figures_queries(client, url)

    for _ in range(12):
        gainer()
    assert _figures_queries(client, url) == small
    cache.clear()  # computed afresh, the leads two at a time
    assert _figures_queries(client, url) == small
    result = impact.impact_preview(draft_sla=draft)
    assert result["totals"] == {"leads": 27, "draft": 14, "current": 1}
    assert result["gained_count"] == 13 and len(result["gained"]) == 13


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_prepares_the_figures_a_draft_save_asks_for(client_for, marketer, evaluated):
    import uuid

    from config.celery import app
    from tests.processes import celery_process, wait_for

    app.control.purge()  # tasks that transactional tests without a worker left queued
    cache.clear()
    make_sla(), make_icp()
    _lead_at_the_threshold()
    draft = versions.sla_draft_create(actor=marketer)
    with celery_process(
        "worker", "--pool=solo", "--without-mingle", "--without-gossip",
        f"--hostname=impact-{uuid.uuid4().hex[:6]}@%h",
    ) as worker:  # fmt: skip
        # Commits, then sends the task (its JSON arguments) to the broker.
        versions.version_update(version=draft, actor=marketer, data={"mql_threshold": 51})
        key = impact.figures_cache_key(
            draft, versions.sla_in_force(), versions.icp_in_force(), days=90, sample=20,
            now=timezone.now(),
        )  # fmt: skip
        wait_for(lambda: isinstance(cache.get(key), impact.ImpactFigures), process=worker)
    response = client_for(marketer).get(reverse("sla:sla_impact", args=[draft.pk]), headers=HTMX)
    assert "Would no longer qualify (1)" in response.text
    assert evaluated == []  # the worker's figures, found ready

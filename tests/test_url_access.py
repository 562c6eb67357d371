"""Every URL, for every role and for anonymous users: who may read it, who may
change through it, and that nobody changes someone else's records through a
URL meant for another role (IDOR). Fragments are checked like pages: each
request is sent once plainly and once as htmx (`HX-Request`), which many views
answer with a fragment of the page.

A URL pattern without an entry in ACCESS fails `test_every_url_is_covered`, and
a method a view takes (GET, POST) without an entry fails
`test_every_method_a_view_takes_is_covered`: adding a page or a form means
saying who may use it.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from config import roles
from config.models import AuditEntry
from leads.models import Lead, LeadStage, Opportunity
from reporting.models import SharedGoal
from sla.models import Notification
from tests.factories import make_account, make_lead, make_opportunity, make_team
from tests.sla_factories import make_icp, make_sla
from tests.winloss_factories import make_action_item, make_retrospective

ROLE_USERS = {
    "marketing": ("mia", roles.MARKETING),
    "rep": ("ray", roles.SALES_REP),
    "manager": ("mona", roles.SALES_MANAGER),
    "revops": ("rosa", roles.REVOPS_ADMIN),
}
ALL = frozenset(ROLE_USERS)
DRAFTERS = frozenset({"marketing", "manager", "revops"})
IMPORTERS = frozenset({"marketing", "revops"})
ADMINS = frozenset({"revops"})


@dataclass(frozen=True)
class Access:
    method: str = "GET"
    allowed: frozenset = ALL  # roles that may use it; the others get 403 (or 404)
    anonymous: int = 302  # what an anonymous request gets (302: to the login page)
    kwargs: object = None  # world -> URL kwargs
    denied_status: int = 403
    data: object = field(default_factory=dict)  # the POST data, or world -> POST data
    # What a denied role's htmx request gets, when it differs: an htmx 2 page
    # swaps only 2xx answers, so some refusals are a 200 fragment saying so.
    htmx_denied: tuple[int, str] | None = None


def read(kwargs=None, allowed=ALL):
    return Access("GET", allowed, kwargs=kwargs)


def write(allowed, kwargs=None, data=None, **options):
    return Access("POST", allowed, kwargs=kwargs, data=data or {}, **options)


def pk(name):
    return lambda w: {"pk": w[name].pk}


def accesses(name) -> tuple[Access, ...]:
    entry = ACCESS[name]
    return entry if isinstance(entry, tuple) else (entry,)


LEAD = pk("lead")  # owned by otto, a rep in nobody's team: an IDOR target
ACCESS = {
    "home": read(),
    "favicon": (Access("GET", ALL, anonymous=301), Access("POST", ALL, anonymous=301)),
    # Signed-in users are sent on from the login page (302), whatever the method.
    "login": (
        Access("GET", ALL, anonymous=200),
        Access("POST", ALL, anonymous=200, data={"username": "nobody", "password": "wrong"}),
    ),
    "logout": Access("POST", ALL, anonymous=302),
    "password_change": (read(), write(ALL)),
    "password_change_done": read(),
    "audit_log": read(allowed=ADMINS),
    # Notifications are each user's own: someone else's is not found.
    "notification_list": read(),
    "notification_read": Access("POST", frozenset(), kwargs=pk("notification"), denied_status=404),
    "notifications_read_all": write(ALL),
    # The agreement.
    "sla:version_list": read(),
    "sla:sla_draft_create": write(DRAFTERS),
    "sla:sla_detail": read(pk("sla")),
    "sla:sla_section_save": write(
        DRAFTERS, lambda w: {"pk": w["sla_draft"].pk, "section": "qualification"}
    ),
    "sla:sla_publish": write(ADMINS, pk("sla_draft")),
    "sla:sla_discard": write(DRAFTERS, pk("sla_draft")),
    "sla:sla_diff": read(pk("sla")),
    "sla:sla_impact": (read(pk("sla_draft")), write(DRAFTERS, pk("sla_draft"))),  # re-evaluate
    "sla:icp_draft_create": write(DRAFTERS),
    "sla:icp_detail": read(pk("icp")),
    "sla:icp_section_save": write(DRAFTERS, lambda w: {"pk": w["icp_draft"].pk, "section": "fit"}),
    "sla:icp_publish": write(ADMINS, pk("icp_draft")),
    "sla:icp_discard": write(DRAFTERS, pk("icp_draft")),
    "sla:icp_diff": read(pk("icp")),
    "sla:icp_impact": (read(pk("icp_draft")), write(DRAFTERS, pk("icp_draft"))),
    "sla:persona_delete": write(
        DRAFTERS, lambda w: {"pk": w["icp_draft"].pk, "persona_pk": w["draft_persona"].pk}
    ),
    "sla:personas": read(),
    "sla:persona_detail": read(pk("persona")),
    # Win/loss: everyone with a role writes retrospectives.
    "winloss:list": read(),
    "winloss:due": read(),
    # A closed deal (otto's, in no one's team) picked for a new retrospective.
    "winloss:create": (read(), write(ALL, data=lambda w: {"opportunity": w["unreviewed"].pk})),
    "winloss:insights": read(),
    "winloss:actions": read(),
    "winloss:detail": read(pk("retro")),
    "winloss:edit": write(ALL, pk("retro")),
    "winloss:driver_add": write(ALL, pk("retro")),
    "winloss:driver_edit": write(
        ALL, lambda w: {"pk": w["retro"].pk, "driver_pk": w["retro"].drivers.first().pk}
    ),
    "winloss:driver_delete": write(
        ALL, lambda w: {"pk": w["retro"].pk, "driver_pk": w["retro"].drivers.first().pk}
    ),
    "winloss:action_add": write(ALL, pk("retro")),
    "winloss:action_edit": write(ALL, lambda w: {"pk": w["retro"].pk, "item_pk": w["action"].pk}),
    "winloss:action_status": write(
        ALL, lambda w: {"pk": w["retro"].pk, "item_pk": w["action"].pk}, {"status": "done"}
    ),
    # Leads: a lead owned by another rep (otto, in no team of the manager's).
    "leads:lead_list": read(),
    "leads:lead_export": read(),
    "leads:lead_create": (read(), write(ALL, data={"email": "new@lead.example"})),
    "leads:lead_detail": read(LEAD),
    "leads:lead_edit": (
        read(LEAD, allowed={"marketing", "revops"}),
        write({"marketing", "revops"}, LEAD),
    ),
    "leads:lead_accept": write(ADMINS, LEAD),
    "leads:lead_reject": write(ADMINS, LEAD),
    "leads:lead_qualify": write(ADMINS, LEAD),
    "leads:lead_convert": write(ADMINS, LEAD),
    "leads:lead_disqualify": write(ADMINS, LEAD),
    "leads:lead_activity": write(ADMINS, LEAD),
    "leads:lead_feedback": write(ADMINS, LEAD),
    "leads:lead_assign": write(ADMINS, LEAD),
    "leads:lead_touchpoint": write({"marketing", "revops"}, LEAD),
    "leads:feedback_report": read(),
    "leads:account_list": read(),
    "leads:account_detail": read(pk("account")),
    "leads:opportunity_detail": read(pk("opportunity")),
    "leads:import_list": (read(), write(IMPORTERS)),
    "leads:import_detail": read(pk("import_job")),
    "leads:import_map": write(IMPORTERS, pk("import_job")),
    "leads:import_start": write(IMPORTERS, pk("import_job")),
    "leads:import_rejected_csv": read(pk("import_job")),
    "leads:import_template_csv": read(lambda w: {"kind": "leads"}),
    # Boards: moves follow the lead and deal services.
    "boards:handoff": read(),
    "boards:deals": read(),
    # Without JavaScript, GET is the move form; htmx refusals are a message in the board.
    "boards:lead_move": (
        read(LEAD, allowed=ADMINS),
        write(ADMINS, LEAD, {"to_stage": "sal"}, htmx_denied=(200, "You cannot move this lead")),
    ),
    "boards:deal_move": (
        read(pk("opportunity"), allowed=ADMINS),
        write(
            ADMINS,
            pk("opportunity"),
            {"to_stage": "negotiation"},
            htmx_denied=(200, "You cannot move this deal"),
        ),
    ),
    # Reporting: everyone reads; managers, marketing and RevOps admins keep the goals.
    "reporting:dashboard": read(),
    "reporting:attribution": read(),
    "reporting:scorecard": read(),
    "reporting:goal_list": read(),
    "reporting:goal_detail": read(pk("goal")),
    "reporting:goal_create": (read(allowed=DRAFTERS), write(DRAFTERS, data={"title": "More"})),
    "reporting:goal_edit": (read(pk("goal"), allowed=DRAFTERS), write(DRAFTERS, pk("goal"))),
    "reporting:goal_delete": write(DRAFTERS, pk("goal")),
    "reporting:qbr_current": read(),
    "reporting:qbr": (
        read(lambda w: {"year": 2026, "quarter": 3}),
        write(DRAFTERS, lambda w: {"year": 2026, "quarter": 3}, {"improvement": "Call sooner"}),
    ),
    "reporting:rows": read(lambda w: {"figure": "new_pipeline"}),
    "reporting:rows_export": read(lambda w: {"figure": "new_pipeline"}),
    "reporting:export": read(lambda w: {"page": "dashboard"}),
    # The ingestion API: bearer keys only, never a session.
    "api_leads": Access("POST", frozenset(), anonymous=401, denied_status=401),
    "api_events": Access("POST", frozenset(), anonymous=401, denied_status=401),
    "api_lead_detail": Access(
        "GET",
        frozenset(),
        anonymous=401,
        denied_status=401,
        kwargs=lambda w: {"lead_id": str(w["lead"].pk)},
    ),
    "api_openapi": Access("GET", ALL, anonymous=200),
}


def url_names():
    """Every named URL pattern outside the Django admin."""
    names = []

    def walk(resolver, namespace=None):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                if pattern.app_name == "admin":
                    continue
                walk(pattern, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                names.append(f"{namespace}:{pattern.name}" if namespace else pattern.name)

    walk(get_resolver())
    return sorted(set(names))


def test_every_url_is_covered():
    missing = [name for name in url_names() if name not in ACCESS]
    assert not missing, f"URL patterns with no authorization coverage: {missing}"
    stale = [name for name in ACCESS if name not in url_names()]
    assert not stale, f"Coverage for URLs that no longer exist: {stale}"
    for name in ACCESS:
        methods = [access.method for access in accesses(name)]
        assert len(methods) == len(set(methods)), f"{name}: one entry per method"


@pytest.fixture
def world(db, make_user, taxonomy):
    from leads import import_services
    from sla import versions

    users = {role: make_user(name, group) for role, (name, group) in ROLE_USERS.items()}
    otto = make_user("otto", roles.SALES_REP)
    make_team(name="Mona's team", manager=users["manager"], members=[users["rep"]])
    sla, icp = make_sla(), make_icp()
    account = make_account()
    lead = make_lead(stage=LeadStage.MQL, owner=otto, account=account, company="Acme")
    opportunity = make_opportunity(owner=otto, stage="proposal", account=account)
    closed = make_opportunity(owner=otto, stage="lost", account=account, amount=Decimal(90000))
    unreviewed = make_opportunity(owner=otto, stage="won", account=account, amount=Decimal(5000))
    retro = make_retrospective(
        opportunity=closed,
        participants=[(users["marketing"], "marketing"), (users["rep"], "sales")],
        drivers=[("pricing-packaging", "hurt")],
    )
    action = make_action_item(retro, owner=users["marketing"])
    icp_draft = versions.icp_draft_create(actor=users["revops"])
    job = import_services.import_job_create(
        kind="leads",
        uploaded_file=SimpleUploadedFile("leads.csv", b"Email,First name\na@b.example,Ann\n"),
        actor=users["marketing"],
    )
    return {
        **users,
        "otto": otto,
        "lead": lead,
        "account": account,
        "opportunity": opportunity,
        "retro": retro,
        "unreviewed": unreviewed,
        "action": action,
        "sla": sla,
        "icp": icp,
        "sla_draft": versions.sla_draft_create(actor=users["revops"]),
        "icp_draft": icp_draft,
        "draft_persona": icp_draft.personas.first(),
        "persona": icp.personas.first(),
        "notification": Notification.objects.create(recipient=otto, title="Otto's own"),
        "import_job": job,
        "goal": SharedGoal.objects.create(
            title="Pipeline",
            metric="new_pipeline",
            target=Decimal(1000),
            starts_on=date(2026, 7, 1),
            ends_on=date(2026, 9, 30),
        ),
    }


def call(client, name, access, world, *, htmx=False, method=None):
    url = reverse(name, kwargs=access.kwargs(world) if access.kwargs else None)
    headers = {"HX-Request": "true"} if htmx else {}
    method = method or access.method
    if method == "POST":
        data = access.data(world) if callable(access.data) else access.data
        return client.post(url, data, headers=headers)
    if method == "GET":
        return client.get(url, headers=headers)
    return client.generic(method, url, headers=headers)


def test_every_method_a_view_takes_is_covered(world):
    """A view answers a method it does not take with 405 and the methods it
    does take (Allow); each GET and POST among them needs an entry. (Django's
    form views also take PUT as a POST; nothing in Accord sends it.)"""
    from django.db import transaction

    uncovered = []
    for name in sorted(ACCESS):
        access = accesses(name)[0]
        response = None
        for user in (None, world["revops"]):  # anonymous first: the login page redirects users
            client = Client(raise_request_exception=False)
            if user is not None:
                client.force_login(user)
            with transaction.atomic():
                response = call(client, name, access, world, method="PROPFIND")
                transaction.set_rollback(True)
            if response.status_code == 405:
                break
        assert response.status_code == 405, (name, "says which methods it takes", response)
        taken = {method.strip() for method in response["Allow"].split(",")}
        covered = {access.method for access in accesses(name)}
        uncovered += [f"{name} {method}" for method in sorted(taken & {"GET", "POST"} - covered)]
    assert not uncovered, f"methods views take with no authorization coverage: {uncovered}"


def records_written(world) -> tuple:
    """What a refused request must leave as it was: the audit log, and the
    lead and deal other roles' URLs are aimed at."""
    return (
        AuditEntry.objects.count(),
        Lead.objects.filter(pk=world["lead"].pk).values().get(),
        Opportunity.objects.filter(pk=world["opportunity"].pk).values().get(),
    )


CASES = [(name, access.method) for name in sorted(ACCESS) for access in accesses(name)]


@pytest.mark.parametrize("name, method", CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_url_access(world, name, method):
    """The URL for anonymous users and each role in turn, plainly and as htmx;
    each role's request runs in a savepoint rolled back afterwards, so every
    role meets the same records. A refused request changes nothing."""
    from django.db import transaction

    access = next(a for a in accesses(name) if a.method == method)
    for htmx in (False, True):
        client = Client(raise_request_exception=False)
        response = call(client, name, access, world, htmx=htmx)
        label = (name, method, "htmx" if htmx else "plain")
        assert response.status_code == access.anonymous, (*label, "anonymous", response.status_code)
        if access.anonymous == 302:
            assert "/login/" in response["Location"]
        for role in ROLE_USERS:
            client = Client(raise_request_exception=False)
            client.force_login(world[role])
            with transaction.atomic():
                before = records_written(world)
                response = call(client, name, access, world, htmx=htmx)
                after = records_written(world)
                transaction.set_rollback(True)
            status = response.status_code
            if role in access.allowed:
                assert status not in (401, 403, 404), (*label, role, status)
                assert status < 500, (*label, role, status)
                continue
            if htmx and access.htmx_denied:
                expected_status, message = access.htmx_denied
                assert status == expected_status, (*label, role, status)
                assert message in response.content.decode(), (*label, role)
            else:
                assert status == access.denied_status, (*label, role, status)
            assert after == before, (*label, role, "a refused request changed records")

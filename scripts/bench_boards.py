#!/usr/bin/env python
"""Server time and query counts of the pipeline boards: each board page, its
htmx fragment, every column fragment (a column, and its "show more" page),
filtered boards, the refresh, and a move.

    .venv/bin/python scripts/bench_boards.py [--database accord_boards_bench] [--runs 40]

Needs a benchmark database with open deals, e.g.

    .venv/bin/python scripts/bench_data.py --database accord_boards_bench --fresh \\
        --opportunities 40000 --open-deal-share 0.75

(200,000 leads, ~78,000 of them in the handoff stages; ~30,000 open deals).
Runs in process with Django's test client (DEBUG off, as in production;
force_login), so the time is the server's: URL routing, middleware, queries
and templates, without a network. Each request runs --runs times after two
warm-ups; p50/p95/max and the query count are printed. The move benchmark
writes to that database (a deal goes demo → proposal → demo), so never point
it at a database you care about.

The generated data set is vacuumed, so the column counts are index-only
scans (lead_board_idx, lead_board_owner_idx). After many lead updates
without a vacuum (ingestion, a re-score, an import) those scans visit the
heap for every card and the handoff board's count costs several times more;
measure that state by updating the leads first, e.g.
`UPDATE leads_lead SET score = LEAST(score + 1, 100) WHERE stage <> 'customer'`.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.bench_data import database_url  # noqa: E402

TARGET_MS = 200


class QueryCounter:
    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def measure(client, method, url, runs, **kwargs):
    """(wall times in ms, CPU times in ms, query counts) of `runs` requests
    after two warm-ups. CPU time is this process's (Python: routing,
    middleware, ORM, templates), which other load on the machine does not
    inflate the way it inflates wall time."""
    from django.db import connection

    call = client.post if method == "POST" else client.get
    times, cpu, queries = [], [], []
    for i in range(runs + 2):
        counter = QueryCounter()
        data = kwargs.get("data_for", lambda i: None)(i)
        started, cpu_started = time.perf_counter(), time.process_time()
        with connection.execute_wrapper(counter):
            response = call(url, data, headers=kwargs.get("headers"))
        elapsed = (time.perf_counter() - started) * 1000
        cpu_elapsed = (time.process_time() - cpu_started) * 1000
        if response.status_code != 200:
            sys.exit(f"{method} {url} answered {response.status_code}")
        if i >= 2:
            times.append(elapsed)
            cpu.append(cpu_elapsed)
            queries.append(counter.count)
    return times, cpu, queries


def p95(values):
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def more_url(body: str, stage: str) -> str:
    """The column's "show more" URL in a rendered board."""
    import re

    match = re.search(
        rf'id="cards-{stage}".*?class="board-more"><a [^>]*href="([^"]+)"', body, re.S
    )
    return match.group(1).replace("&amp;", "&") if match else ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="accord_boards_bench")
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    os.environ.update(
        DATABASE_URL=database_url(args.database),
        DEBUG="0",
        HTTPS="0",
        SERVER_TIMING="0",
        SECRET_KEY="bench-only-secret-key-" + "x" * 40,
        ALLOWED_HOSTS="testserver",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from leads.board_selectors import DEAL_COLUMNS, HANDOFF_COLUMNS
    from leads.models import Lead, LeadStage, Opportunity, Team

    users = {u.username: u for u in get_user_model().objects.filter(
        username__in=["rep", "manager", "marketing", "revops"])}  # fmt: skip
    if len(users) < 4:
        sys.exit("The database has no demo users; generate it with scripts/bench_data.py.")
    open_deals = Opportunity.objects.filter(stage__in=["discovery", "demo", "proposal",
                                                       "negotiation"]).count()  # fmt: skip
    handoff = Lead.objects.filter(stage__in=[c.stage for c in HANDOFF_COLUMNS]).count()
    print(f"Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.")
    print(f"Database {args.database}: {handoff:,} leads in the handoff stages "
          f"(MQL {Lead.objects.filter(stage=LeadStage.MQL).count():,}), "
          f"{open_deals:,} open deals. {args.runs} runs per request, DEBUG off. "
          "Wall and CPU times in ms.\n")  # fmt: skip

    clients = {}
    for name, user in users.items():
        clients[name] = Client()
        clients[name].force_login(user)
    htmx = {"HX-Request": "true"}
    team = Team.objects.order_by("name").first()
    rows = []

    def run(label, who, method, url, **kwargs):
        times, cpu, queries = measure(clients[who], method, url, args.runs, **kwargs)
        row = (label, who, statistics.median(times), p95(times), max(times),
               min(queries), max(queries), statistics.median(cpu), p95(cpu))  # fmt: skip
        rows.append(row)
        count = f"{row[5]}" if row[5] == row[6] else f"{row[5]}-{row[6]}"
        print(f"{label:<50} {who:<9} p50 {row[2]:6.1f}  p95 {row[3]:6.1f}  max {row[4]:6.1f}  "
              f"cpu p50 {row[7]:5.1f} p95 {row[8]:5.1f}  queries {count}")  # fmt: skip

    for board, url, columns in (("Handoff", "/boards/", HANDOFF_COLUMNS),
                                ("Deal", "/boards/deals/", DEAL_COLUMNS)):  # fmt: skip
        for who in ("rep", "manager", "marketing", "revops"):
            run(f"{board} board page", who, "GET", url)
        run(f"{board} board fragment (htmx)", "manager", "GET", url, headers=htmx)
        page = clients["manager"].get(url).content.decode()
        for column in columns:
            run(f"{board} column {column.stage} (htmx)", "manager", "GET",
                f"{url}?column={column.stage}", headers=htmx)  # fmt: skip
            more = more_url(page, column.stage)
            if more:
                run(f"{board} column {column.stage}, show more (htmx)", "manager", "GET", more,
                    headers=htmx)  # fmt: skip
        filters = {"owner=me": "rep", "owner=team": "manager", f"team={team.pk}": "manager",
                   "source=webinar": "marketing", "segment=enterprise": "marketing"}  # fmt: skip
        if board == "Deal":
            filters["amount_min=20000&amount_max=60000"] = "marketing"
        for query, who in filters.items():
            run(f"{board} board filtered {query} (htmx)", who, "GET", f"{url}?{query}",
                headers=htmx)  # fmt: skip
        stale = {f"stamp_{c.stage}": "x" for c in columns}
        run(f"{board} board refresh, every column changed", "manager", "GET", url,
            headers=htmx, data_for=lambda i, stale=stale: {"sync": "1", **stale})  # fmt: skip
        quiet = {f"stamp_{c.stage}": stamp for c, stamp in zip(columns, _stamps(page, columns),
                                                                strict=True)}  # fmt: skip
        run(f"{board} board refresh, nothing changed", "manager", "GET", url, headers=htmx,
            data_for=lambda i, quiet=quiet: {"sync": "1", **quiet})  # fmt: skip

    deal = Opportunity.objects.filter(stage="demo", owner=users["revops"]).first() or (
        Opportunity.objects.filter(stage="demo").first()
    )
    version = [deal.version]

    def back_and_forth(i):
        to_stage = "proposal" if i % 2 == 0 else "demo"
        data = {"to_stage": to_stage, "from_stage": "demo" if to_stage == "proposal" else
                "proposal", "version": version[0]}  # fmt: skip
        version[0] += 1
        return data

    run("Deal move demo ⇄ proposal (htmx)", "revops", "POST", f"/boards/deals/{deal.pk}/move/",
        headers={**htmx, "HX-Current-URL": "http://testserver/boards/deals/"},
        data_for=back_and_forth)  # fmt: skip

    slow = [row for row in rows if row[3] > TARGET_MS]
    print(f"\nLoad average {os.getloadavg()[0]:.1f}. {len(rows)} requests; p95 over {TARGET_MS} ms: "
          f"{', '.join(f'{r[0]} ({r[1]})' for r in slow) or 'none'}.")  # fmt: skip


def _stamps(page: str, columns):
    import re

    return [re.search(rf'name="stamp_{c.stage}" value="([^"]+)"', page).group(1) for c in columns]


if __name__ == "__main__":
    main()

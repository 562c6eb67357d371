"""Every table of the reporting pages as rows for CSV: built from the same
context the page renders, so the CSV and the page agree."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.utils import timezone

from reporting.attribution import MODEL_LABELS


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list]


class Echo:
    """A file-like object whose write() returns the line, for streaming CSV."""

    def write(self, value):
        return value


def csv_value(value):
    """Numbers as plain numbers (2 decimals for money and rates), times in ISO."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return value.quantize(Decimal("0.01"))
    if isinstance(value, float):
        return round(value, 4) if value == value else ""
    if isinstance(value, datetime):
        return (
            timezone.localtime(value).isoformat() if timezone.is_aware(value) else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    return value


def dashboard_tables(context: dict) -> dict[str, Table]:
    figures = Table(
        "Figures",
        ["figure", "value", "previous period", "change", "unit", "detail", "definition"],
        [
            [f.label, f.value, f.previous, f.change, f.unit, f.detail, f.definition]
            for f in context["figure_list"]
        ],
    )
    funnel = Table(
        "Funnel",
        [
            "stage",
            "leads",
            "from previous stage",
            "conversion %",
            "median days from previous",
            "leads (previous period)",
            "from previous stage (previous period)",
            "conversion % (previous period)",
            "median days from previous (previous period)",
        ],
        [
            [
                s["label"],
                s["reached"],
                s["from_previous"],
                s["conversion"],
                s["median_days"],
                s["previous"]["reached"],
                s["previous"]["from_previous"],
                s["previous"]["conversion"],
                s["previous"]["median_days"],
            ]
            for s in context["funnel"]["stages"]
        ],
    )
    cycle = Table(
        "Sales cycle by source channel",
        [
            "source channel",
            "deals won",
            "won revenue",
            "median days",
            "mean days",
            "deals won (previous period)",
            "won revenue (previous period)",
            "median days (previous period)",
            "mean days (previous period)",
        ],
        [
            [
                r["label"],
                r["deals"],
                r["revenue"],
                r["median_days"],
                r["mean_days"],
                r["previous"]["deals"],
                r["previous"]["revenue"],
                r["previous"]["median_days"],
                r["previous"]["mean_days"],
            ]
            for r in context["cycle_by_channel"]
        ],
    )
    money, before = context["economics"]["cur"], context["economics"]["prev"]
    economics_columns = ["spend", "new customers", "CAC", "LTV", "LTV:CAC"]

    def economics_values(row, *, spend=None):
        return [
            row.spend if spend is None else spend,
            row.customers,
            row.cac,
            row.ltv,
            row.ltv_cac,
        ]

    economics = Table(
        "CAC and LTV by channel",
        [
            "channel",
            *economics_columns,
            *(f"{column} (previous period)" for column in economics_columns),
        ],
        [[r.label, *economics_values(r), *economics_values(r.previous)] for r in money.channels]
        + [
            [
                "All (with sales cost)",
                *economics_values(money, spend=money.spend + money.sales_cost),
                *economics_values(before, spend=before.spend + before.sales_cost),
            ]
        ],
    )
    trend = Table(
        "By month",
        [
            "month",
            "new pipeline",
            "marketing-sourced pipeline",
            "won revenue",
            "MQLs",
            "MQL commitment",
        ],
        [
            [
                r["month"],
                r["new_pipeline"],
                r["sourced_pipeline"],
                r["won_revenue"],
                r["mqls"],
                r["commitment"],
            ]
            for r in context["trend"]
        ],
    )
    return {
        "figures": figures,
        "funnel": funnel,
        "cycle": cycle,
        "economics": economics,
        "trend": trend,
        "goals": goal_tables(context["goal_progress"])["goals"],
    }


def goal_tables(progress) -> dict[str, Table]:
    return {
        "goals": Table(
            "Shared goals",
            [
                "goal",
                "metric",
                "starts",
                "ends",
                "segment",
                "team",
                "target",
                "actual",
                "progress %",
                "expected by now %",
                "status",
            ],
            [
                [
                    p.goal.title,
                    p.goal.get_metric_display(),
                    p.goal.starts_on,
                    p.goal.ends_on,
                    p.goal.segment,
                    p.goal.team.name if p.goal.team else "",
                    p.goal.target,
                    p.actual,
                    p.percent,
                    p.expected_percent,
                    p.status_label,
                ]
                for p in progress
            ],
        )
    }


def _attribution_table(title: str, rows, models: list[str]) -> Table:
    header = ["name", "detail"]
    for model in models:
        header += [
            f"pipeline ({MODEL_LABELS[model]})",
            f"revenue ({MODEL_LABELS[model]})",
            f"credited deals ({MODEL_LABELS[model]})",
        ]
    header += ["spend"] + [f"ROI ({MODEL_LABELS[m]})" for m in models]
    body = []
    for row in rows:
        line = [row.label, row.note]
        for model in models:
            line += [row.pipeline.get(model), row.revenue.get(model), row.deals.get(model)]
        line += [row.spend] + [row.roi(m) for m in models]
        body.append(line)
    return Table(title, header, body)


def attribution_tables(context: dict) -> dict[str, Table]:
    models = context["model_keys"]
    totals = context["totals"]
    return {
        "channels": _attribution_table("By channel", context["channels"], models),
        "campaigns": _attribution_table("By campaign", context["campaigns"], models),
        "assets": _attribution_table("By content asset", context["assets"], models),
        "ltv": Table(
            "LTV by acquisition channel",
            ["channel", "new customers", "LTV", "CAC", "LTV:CAC"],
            [[r.label, r.customers, r.ltv, r.cac, r.ltv_cac] for r in context["ltv_rows"]],
        ),
        "totals": Table(
            "Totals",
            ["kind", "deals", "amount", "unattributed deals", "unattributed amount"],
            [
                [kind, t["deals"], t["amount"], t["unattributed_deals"], t["unattributed"]]
                for kind, t in totals.items()
            ],
        ),
        "weights": Table(
            "Weights used",
            ["model", "weights", "scheme id"],
            [
                [m["label"], m["weights"], m["scheme"].pk if m["scheme"] else ""]
                for m in context["models"]
            ],
        ),
    }


RETRO_COLUMNS = [
    "deals due a retrospective",
    "retrospectives held",
    "retrospectives on time",
    "retrospectives reviewed or overdue",
    "retrospectives in time %",
]


def retro_values(row: dict) -> list:
    return [
        row["retro_eligible"],
        row["retro_reviewed"],
        row["retro_on_time"],
        row["retro_resolved"],
        row["retro_share"],
    ]


def scorecard_tables(context: dict) -> dict[str, Table]:
    versions = Table(
        "By SLA version and month",
        [
            "SLA version",
            "month",
            "MQLs",
            "MQL commitment",
            "MQLs % of commitment",
            "accepted",
            "rejected",
            "acceptance %",
            "acceptance target %",
            "first contact within SLA %",
            "median hours to contact",
            "breaches",
            "manager notified",
            "reassigned",
            "rejections with a reason %",
            *RETRO_COLUMNS,
        ],
        [
            [
                r["version"].label if r["version"] else "none",
                r["month"],
                r["mqls"],
                r["commitment"],
                r["mql_share"],
                r["accepted"],
                r["rejected"],
                r["acceptance_rate"],
                r["acceptance_target"],
                r["within_share"],
                r["median_hours"],
                r["breaches"],
                r["notified"],
                r["reassigned"],
                r["feedback_share"],
                *retro_values(r),
            ]
            for r in context["versions"]
        ],
    )
    columns = [
        "MQLs",
        "accepted",
        "rejected",
        "acceptance %",
        "first contact within SLA %",
        "breaches",
        "manager notified",
        "reassigned",
        "rejections with a reason %",
        *RETRO_COLUMNS,
    ]

    def values(r):
        return [
            r["mqls"],
            r["accepted"],
            r["rejected"],
            r["acceptance_rate"],
            r["within_share"],
            r["breaches"],
            r["notified"],
            r["reassigned"],
            r["feedback_share"],
            *retro_values(r),
        ]

    people = context["people"]
    return {
        "versions": versions,
        "teams": Table(
            "By team",
            ["team", "reps", *columns],
            [[r["name"], r["reps"], *values(r)] for r in people["teams"]],
        ),
        "reps": Table(
            "By rep",
            ["rep", "team", *columns, "median hours to contact"],
            [
                [
                    r["name"] or "Unassigned",
                    r["team"].name if r["team"] else "",
                    *values(r),
                    r["median_hours"],
                ]
                for r in people["reps"]
            ],
        ),
    }


def qbr_tables(context: dict) -> dict[str, Table]:
    tables = scorecard_tables(
        {"versions": context["sla_rows"], "people": {"teams": [], "reps": []}}
    )
    themes = context["themes"]
    return {
        "kpis": Table(
            "KPIs against the previous quarter",
            ["figure", "this quarter", "previous quarter", "change", "unit"],
            [[f.label, f.value, f.previous, f.change, f.unit] for f in context["figures"]],
        ),
        "sla": tables["versions"],
        "themes": Table(
            "Win/loss themes",
            ["outcome", "driver", "score", "mentions", "share of reviews %"],
            [
                [outcome, s.category.name, s.score, s.mentions, s.share]
                for outcome in ("wins", "losses")
                for s in themes[outcome]
            ],
        ),
        "goals": goal_tables(context["goal_progress"])["goals"],
        "actions": Table(
            "Open action items",
            ["action", "owner", "due", "status", "changes"],
            [
                [
                    a.title,
                    str(a.owner) if a.owner else "",
                    a.due_on,
                    a.get_status_display(),
                    a.get_target_kind_display(),
                ]
                for a in context["actions"]
            ],
        ),
    }

"""Published SLA and ICP versions for tests, with simple, readable rules."""

from datetime import time
from decimal import Decimal

from django.utils import timezone

from sla.models import (
    BehaviourCriterion,
    EngagementGroup,
    EngagementRule,
    FitRule,
    IcpVersion,
    Persona,
    SlaVersion,
    VersionStatus,
)


def make_sla(*, publish=True, number=None, rules=None, criteria=(), **fields) -> SlaVersion:
    """An SLA with groups "web" (cap 30), "content" (cap 40), "intent" (cap 50)
    and rules: page view 2, content download 10 (bottom funnel 20),
    webinar attended 15, demo request 40. No decay to speak of by default."""
    number = number or (SlaVersion.objects.count() + 1)
    fields.setdefault("title", f"SLA {number}")
    fields.setdefault("mql_threshold", 50)
    fields.setdefault("decay_half_life_days", 365)
    fields.setdefault("working_days", [0, 1, 2, 3, 4, 5, 6])
    fields.setdefault("day_starts", time(0))
    fields.setdefault("day_ends", time(23, 59))
    fields.setdefault("calendar_time_zone", "UTC")
    fields.setdefault("changelog", "Test agreement.")
    version = SlaVersion.objects.create(number=number, **fields)
    groups = {
        name: EngagementGroup.objects.create(version=version, name=name, cap=cap)
        for name, cap in (("web", 30), ("content", 40), ("intent", 50))
    }
    for touchpoint_type, stage, points, group in rules or (
        ("page_view", "", 2, "web"),
        ("content_download", "", 10, "content"),
        ("content_download", "bottom", 20, "content"),
        ("webinar_attended", "", 15, "content"),
        ("demo_request", "", 40, "intent"),
    ):
        EngagementRule.objects.create(
            version=version, touchpoint_type=touchpoint_type, asset_stage=stage,
            points=points, group=groups[group],
        )  # fmt: skip
    for label, types, count, days in criteria:
        BehaviourCriterion.objects.create(
            version=version, label=label, touchpoint_types=types, min_count=count,
            within_days=days,
        )  # fmt: skip
    if publish:
        SlaVersion.objects.filter(status=VersionStatus.PUBLISHED).update(
            status=VersionStatus.SUPERSEDED, superseded_at=timezone.now()
        )
        SlaVersion.objects.filter(pk=version.pk).update(
            status=VersionStatus.PUBLISHED, published_at=timezone.now()
        )
        version.refresh_from_db()
    return version


def make_icp(*, publish=True, number=None, fit_rules=None, max_fit_points=40) -> IcpVersion:
    """An ICP: software +15, enterprise +15, 1000+ employees +10; personas IT
    leader (director, head, cio) and procurement."""
    number = number or (IcpVersion.objects.count() + 1)
    version = IcpVersion.objects.create(
        number=number, title=f"ICP {number}", max_fit_points=max_fit_points, changelog="Test."
    )
    for attribute, values, low, high, points in fit_rules or (
        ("industry", ["software"], None, None, 15),
        ("segment", ["enterprise"], None, None, 15),
        ("employees", [], Decimal(1000), None, 10),
    ):
        FitRule.objects.create(
            version=version, attribute=attribute, values=values, min_value=low, max_value=high,
            points=points,
        )  # fmt: skip
    Persona.objects.create(
        version=version, name="IT leader", buying_role="economic_buyer",
        title_keywords=["director", "head of it", "cio"], pain_points="Fleet costs.",
    )  # fmt: skip
    Persona.objects.create(
        version=version, name="Procurement", buying_role="champion",
        title_keywords=["procurement", "purchasing"],
    )  # fmt: skip
    if publish:
        IcpVersion.objects.filter(status=VersionStatus.PUBLISHED).update(
            status=VersionStatus.SUPERSEDED, superseded_at=timezone.now()
        )
        IcpVersion.objects.filter(pk=version.pk).update(
            status=VersionStatus.PUBLISHED, published_at=timezone.now()
        )
        version.refresh_from_db()
    return version

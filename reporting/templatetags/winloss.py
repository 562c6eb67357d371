"""Win/loss on other apps' pages: the deal page's retrospective panel and the
home page's reviews-due card load their own data here, so those pages need
only an include."""

from django import template
from django.utils import timezone
from django.utils.html import format_html

from reporting import winloss_selectors as selectors
from reporting.winloss_services import can_edit_retrospectives

register = template.Library()

OUTCOME_BADGES = {"won": "badge-ok", "lost": "badge-bad"}
SENTIMENT_BADGES = {"helped": "badge-ok", "hurt": "badge-bad"}
STATUS_BADGES = {"open": "badge-warn", "in_progress": "badge-brand", "done": "badge-ok",
                 "dropped": ""}  # fmt: skip


@register.inclusion_tag("reporting/winloss/_deal_panel.html", takes_context=True)
def retrospective_panel(context, opportunity):
    """The deal page's "Retrospective" section: the deal's retrospective, or
    whether one is due (and a way to start it)."""
    user = context["request"].user
    review = selectors.opportunity_review(opportunity)
    return {
        "opportunity": opportunity,
        "review": review,
        "is_owner": opportunity.owner_id == user.pk,
        "can_edit": can_edit_retrospectives(user),
    }


@register.simple_tag
def reviews_due_for(user, limit=5):
    """{'count', 'deals', 'today'}: the user's deals due a retrospective (two queries)."""
    today = timezone.localdate()
    deals = selectors.reviews_due(owner=user, today=today)
    return {"count": deals.count(), "deals": list(deals[:limit]), "today": today}


@register.simple_tag
def outcome_badge(retrospective):
    return format_html(
        '<span class="badge {}">{}</span>',
        OUTCOME_BADGES.get(retrospective.outcome, ""),
        retrospective.outcome_label,
    )


@register.simple_tag
def sentiment_badge(driver):
    return format_html(
        '<span class="badge {}">{}</span>',
        SENTIMENT_BADGES.get(driver.sentiment, ""),
        driver.get_sentiment_display(),
    )


@register.simple_tag
def action_status_badge(item):
    return format_html(
        '<span class="badge {}">{}</span>',
        STATUS_BADGES.get(item.status, ""),
        item.get_status_display(),
    )


@register.filter
def target_url(item):
    """Where an action item's target lives in Accord ('' when nowhere)."""
    target = item.target
    getter = getattr(target, "get_absolute_url", None)
    return getter() if getter else ""


@register.simple_tag
def action_items_closed_by(version):
    """The action items a published SLA or ICP version closed (one query)."""
    if version is None or version.is_draft:
        return []
    return selectors.action_items_closed_by(version)

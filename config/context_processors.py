from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject

from config import roles

# The main navigation, in order: (namespace, label, url name, what it is for).
# A section appears once its URL exists.
NAV_SECTIONS = (
    ("leads", "Leads", "leads:lead_list", "Every lead and account, its timeline and feedback."),
    ("boards", "Boards", "boards:handoff", "The handoff board and the deal board."),
    ("sla", "SLA & ICP", "sla:version_list", "The agreement: SLA, ICP and personas."),
    ("reporting", "Reporting", "reporting:dashboard", "Closed-loop numbers both teams read."),
    ("winloss", "Win/loss", "winloss:list", "Retrospectives on won and lost deals."),
)


def nav_sections() -> list[dict]:
    sections = []
    for app, label, url_name, description in NAV_SECTIONS:
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        sections.append({"app": app, "label": label, "url": url, "description": description})
    return sections


def navigation(request):
    """What the layout needs: sections, the user's roles, unread notifications."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def unread():
        from sla.selectors import notifications_unread_count

        return notifications_unread_count(user=user)

    names = roles.role_names(user)
    return {
        "nav_sections": nav_sections(),
        "user_roles": sorted(names),
        "can_admin": user.is_staff and (user.is_superuser or roles.REVOPS_ADMIN in names),
        "unread_notifications": SimpleLazyObject(unread),
    }

from sla.models import Notification


def notifications_unread_count(*, user) -> int:
    return Notification.objects.for_user(user).unread().count()


def notifications_for(*, user, limit: int | None = None):
    notifications = Notification.objects.for_user(user)
    return notifications[:limit] if limit else notifications

from django.utils import timezone

from sla.models import Notification


def notification_send(*, recipient, title: str, body: str = "", url: str = "", email: bool = True):
    """Notify a user in the app and, once the surrounding transaction has
    committed, by email (through a task). If the transaction rolls back,
    nothing is shown and nothing is sent."""
    from sla.tasks import notification_email

    notification = Notification.objects.create(recipient=recipient, title=title, body=body, url=url)
    if email and recipient.email:
        notification_email.delay_on_commit(notification.pk)
    return notification


def notification_mark_read(*, notification: Notification) -> None:
    """Idempotent: a notification already read keeps its first read time."""
    Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def notifications_mark_all_read(*, user) -> int:
    return Notification.objects.for_user(user).unread().update(read_at=timezone.now())

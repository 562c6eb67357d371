from celery import shared_task
from django.core.mail import send_mail

from sla.models import Notification


@shared_task(acks_late=True, ignore_result=True)
def notification_email(notification_id: int):
    """Email a notification to its recipient. A notification deleted meanwhile
    is skipped; a retried task may send the email twice (mail is at-least-once)."""
    notification = (
        Notification.objects.select_related("recipient").filter(pk=notification_id).first()
    )
    if notification is None or not notification.recipient.email:
        return
    send_mail(
        subject=f"[Accord] {notification.title}",
        message=f"{notification.body}\n\n{notification.url}".strip(),
        from_email=None,
        recipient_list=[notification.recipient.email],
    )

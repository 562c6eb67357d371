from django.core import mail
from django.urls import reverse

from sla import services
from sla.models import Notification


def test_notification_send_emails_only_after_commit(rep, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notification = services.notification_send(
            recipient=rep, title="Lead routed to you", body="Jane Doe at Acme", url="/"
        )
    assert Notification.objects.filter(pk=notification.pk).exists()
    assert len(callbacks) == 1  # the email task, enqueued on commit


def test_notification_email_task_sends_mail(rep):
    from sla.tasks import notification_email

    notification = Notification.objects.create(recipient=rep, title="Breach", body="Overdue")
    notification_email.run(notification.pk)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "[Accord] Breach"
    assert mail.outbox[0].to == [rep.email]


def test_unread_badge_and_panel_fragment(client_for, rep, manager):
    Notification.objects.create(recipient=rep, title="First for Ray")
    Notification.objects.create(recipient=rep, title="Second for Ray")
    Notification.objects.create(recipient=manager, title="For Mona only")
    client = client_for(rep)

    page = client.get(reverse("home")).content.decode()
    assert 'data-count="2"' in page

    response = client.get(reverse("notification_list"), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "<html" not in body  # a fragment, not the page
    assert "First for Ray" in body and "Second for Ray" in body
    assert "For Mona only" not in body
    assert 'hx-swap-oob="true"' in body
    assert "HX-Request" in response["Vary"]


def test_mark_read_redirects_to_target_and_is_idempotent(client_for, rep):
    notification = Notification.objects.create(recipient=rep, title="Go", url="/notifications/")
    client = client_for(rep)
    response = client.post(reverse("notification_read", args=[notification.pk]))
    assert response.status_code == 302
    assert response["Location"] == "/notifications/"
    notification.refresh_from_db()
    first_read = notification.read_at
    assert first_read is not None
    client.post(reverse("notification_read", args=[notification.pk]))
    notification.refresh_from_db()
    assert notification.read_at == first_read


def test_mark_read_refuses_an_offsite_url(client_for, rep):
    notification = Notification.objects.create(recipient=rep, title="X", url="https://evil.test/")
    response = client_for(rep).post(reverse("notification_read", args=[notification.pk]))
    assert response["Location"] == reverse("notification_list")


def test_cannot_read_someone_elses_notification(client_for, rep, manager):
    notification = Notification.objects.create(recipient=manager, title="Private")
    response = client_for(rep).post(reverse("notification_read", args=[notification.pk]))
    assert response.status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None


def test_mark_all_read(client_for, rep):
    Notification.objects.create(recipient=rep, title="A")
    Notification.objects.create(recipient=rep, title="B")
    response = client_for(rep).post(
        reverse("notifications_read_all"), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert 'data-count="0"' in response.content.decode()
    assert not Notification.objects.filter(recipient=rep, read_at__isnull=True).exists()


def test_notification_page_lists_and_pages(client_for, rep):
    Notification.objects.bulk_create(
        Notification(recipient=rep, title=f"Note {i}") for i in range(30)
    )
    body = client_for(rep).get(reverse("notification_list")).content.decode()
    assert "Page 1 of 2" in body
    assert body.count('class="notification-item') == 25

from django.apps import AppConfig


class SlaConfig(AppConfig):
    name = "sla"
    verbose_name = "SLA and ICP"

    def ready(self):
        from leads.signals import touchpoints_recorded

        touchpoints_recorded.connect(rescore_on_touchpoints, dispatch_uid="sla-rescore")


def rescore_on_touchpoints(sender, lead_ids, **kwargs):
    """New touchpoints (API, import) were committed: re-score their leads in a
    task. The signal is sent after commit, so the task sees the touchpoints."""
    from django.utils import timezone

    from config.queue import enqueue
    from sla.tasks import leads_rescore

    enqueue(leads_rescore, sorted(lead_ids), sent_at=timezone.now().isoformat())

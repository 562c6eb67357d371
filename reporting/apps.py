from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "reporting"
    verbose_name = "Reporting"

    def ready(self):
        from leads.signals import touchpoints_recorded
        from reporting.tasks import refresh_on_touchpoints

        touchpoints_recorded.connect(refresh_on_touchpoints, dispatch_uid="reporting-refresh")

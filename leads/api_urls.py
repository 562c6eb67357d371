"""The ingestion API, included at /api/v1/ (see leads.api)."""

from django.urls import path, re_path

from leads import api

urlpatterns = [
    path("leads", api.leads_post, name="api_leads"),
    path("leads/<str:lead_id>", api.lead_detail, name="api_lead_detail"),
    path("events", api.events_post, name="api_events"),
    path("openapi.json", api.openapi, name="api_openapi"),
    re_path(r"^(?P<path>.*)$", api.not_found),
]

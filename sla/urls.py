"""The agreement's pages: SLA and ICP versions, their editor, and personas."""

from django.urls import path

from sla import agreement_views as views

app_name = "sla"

urlpatterns = [
    path("", views.version_list, name="version_list"),
    path("sla/new/", views.sla_draft_create, name="sla_draft_create"),
    path("sla/<int:pk>/", views.sla_detail, name="sla_detail"),
    path("sla/<int:pk>/sections/<slug:section>/", views.sla_section_save, name="sla_section_save"),
    path("sla/<int:pk>/publish/", views.sla_publish, name="sla_publish"),
    path("sla/<int:pk>/discard/", views.sla_discard, name="sla_discard"),
    path("sla/<int:pk>/diff/", views.sla_diff, name="sla_diff"),
    path("sla/<int:pk>/impact/", views.sla_impact, name="sla_impact"),
    path("icp/new/", views.icp_draft_create, name="icp_draft_create"),
    path("icp/<int:pk>/", views.icp_detail, name="icp_detail"),
    path("icp/<int:pk>/sections/<slug:section>/", views.icp_section_save, name="icp_section_save"),
    path("icp/<int:pk>/publish/", views.icp_publish, name="icp_publish"),
    path("icp/<int:pk>/discard/", views.icp_discard, name="icp_discard"),
    path("icp/<int:pk>/diff/", views.icp_diff, name="icp_diff"),
    path("icp/<int:pk>/impact/", views.icp_impact, name="icp_impact"),
    path(
        "icp/<int:pk>/personas/<int:persona_pk>/delete/",
        views.persona_delete,
        name="persona_delete",
    ),
    path("personas/", views.personas, name="personas"),
    path("personas/<int:pk>/", views.persona_detail, name="persona_detail"),
]

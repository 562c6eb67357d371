from django.urls import include, path

from leads import views

app_name = "leads"

urlpatterns = [
    path("leads/", views.lead_list, name="lead_list"),
    path("leads/export.csv", views.lead_export, name="lead_export"),
    path("leads/new/", views.lead_create, name="lead_create"),
    path("leads/<int:pk>/", views.lead_detail, name="lead_detail"),
    path("leads/<int:pk>/edit/", views.lead_edit, name="lead_edit"),
    path("leads/<int:pk>/accept/", views.lead_accept, name="lead_accept"),
    path("leads/<int:pk>/reject/", views.lead_reject, name="lead_reject"),
    path("leads/<int:pk>/qualify/", views.lead_qualify, name="lead_qualify"),
    path("leads/<int:pk>/convert/", views.lead_convert, name="lead_convert"),
    path("leads/<int:pk>/disqualify/", views.lead_disqualify, name="lead_disqualify"),
    path("leads/<int:pk>/activity/", views.lead_activity, name="lead_activity"),
    path("leads/<int:pk>/feedback/", views.lead_feedback, name="lead_feedback"),
    path("leads/<int:pk>/assign/", views.lead_assign, name="lead_assign"),
    path("leads/<int:pk>/touchpoint/", views.lead_touchpoint, name="lead_touchpoint"),
    path("feedback/", views.feedback_report, name="feedback_report"),
    path("accounts/", views.account_list, name="account_list"),
    path("accounts/<int:pk>/", views.account_detail, name="account_detail"),
    path("deals/<int:pk>/", views.opportunity_detail, name="opportunity_detail"),
    path("imports/", include("leads.import_urls")),
]

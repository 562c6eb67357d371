"""Closed-loop reporting: /reporting/..."""

from django.urls import path

from reporting import views

app_name = "reporting"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("attribution/", views.attribution, name="attribution"),
    path("scorecard/", views.scorecard, name="scorecard"),
    path("goals/", views.goal_list, name="goal_list"),
    path("goals/new/", views.goal_create, name="goal_create"),
    path("goals/<int:pk>/", views.goal_detail, name="goal_detail"),
    path("goals/<int:pk>/edit/", views.goal_edit, name="goal_edit"),
    path("goals/<int:pk>/delete/", views.goal_delete, name="goal_delete"),
    path("qbr/", views.qbr_current, name="qbr_current"),
    path("qbr/<int:year>/q<int:quarter>/", views.qbr, name="qbr"),
    path("rows/<slug:figure>/", views.figure_rows, name="rows"),
    path("rows/<slug:figure>/export.csv", views.figure_rows_export, name="rows_export"),
    path("export/<slug:page>.csv", views.export, name="export"),
]

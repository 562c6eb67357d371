"""Win/loss retrospectives: /winloss/..."""

from django.urls import path

from reporting import winloss_views as views

app_name = "winloss"

urlpatterns = [
    path("", views.retrospective_list, name="list"),
    path("due/", views.reviews_due, name="due"),
    path("new/", views.retrospective_create, name="create"),
    path("insights/", views.insights, name="insights"),
    path("actions/", views.action_item_list, name="actions"),
    path("<int:pk>/", views.retrospective_detail, name="detail"),
    path("<int:pk>/edit/", views.retrospective_edit, name="edit"),
    path("<int:pk>/drivers/", views.driver_add, name="driver_add"),
    path("<int:pk>/drivers/<int:driver_pk>/", views.driver_edit, name="driver_edit"),
    path("<int:pk>/drivers/<int:driver_pk>/delete/", views.driver_delete, name="driver_delete"),
    path("<int:pk>/actions/", views.action_item_add, name="action_add"),
    path("<int:pk>/actions/<int:item_pk>/", views.action_item_edit, name="action_edit"),
    path("<int:pk>/actions/<int:item_pk>/status/", views.action_item_status, name="action_status"),
]

from django.urls import path

from leads import import_views

urlpatterns = [
    path("", import_views.import_list, name="import_list"),
    path("<int:pk>/", import_views.import_detail, name="import_detail"),
    path("<int:pk>/map/", import_views.import_map, name="import_map"),
    path("<int:pk>/start/", import_views.import_start, name="import_start"),
    path("<int:pk>/rejected.csv", import_views.import_rejected_csv, name="import_rejected_csv"),
    path("template/<slug:kind>.csv", import_views.import_template_csv, name="import_template_csv"),
]

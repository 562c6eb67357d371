from django.urls import include, path

app_name = "leads"

urlpatterns = [
    path("imports/", include("leads.import_urls")),
]

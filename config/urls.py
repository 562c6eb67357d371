from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from config import views as config_views
from reporting import views as reporting_views

urlpatterns = [
    # Pages without the layout (the admin's) make browsers ask for /favicon.ico.
    path(
        "favicon.ico",
        login_not_required(RedirectView.as_view(url=static("accord/favicon.svg"), permanent=True)),
        name="favicon",
    ),
    path("", reporting_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("notifications/", include("sla.notification_urls")),
    path("agreement/", include("sla.urls")),
    path("winloss/", include("reporting.winloss_urls")),
    path("reporting/", include("reporting.urls")),
    path("", include("leads.urls")),
    path("boards/", include("leads.board_urls")),
    path("api/v1/", include("leads.api_urls")),
    path("audit/", config_views.audit_log, name="audit_log"),
    path("admin/", admin.site.urls),
]

handler500 = "config.views.server_error"

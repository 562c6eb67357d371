"""The Django admin as Accord's configuration back office: its site, and the
admin mixin for tables the system writes.

The site class lives here, not in `config.admin`: Django imports the default
site's module while it builds `admin.site`, so registrations in that same
module would land on a site that is then thrown away.
"""

from django.contrib import admin

from config import roles


class AccordAdminSite(admin.AdminSite):
    """The configuration back office: RevOps admins (and superusers) only."""

    site_header = "Accord administration"
    site_title = "Accord admin"
    index_title = "Configuration back office"

    def has_permission(self, request):
        user = request.user
        return bool(
            user.is_active
            and user.is_staff
            and (user.is_superuser or roles.has_role(user, roles.REVOPS_ADMIN))
        )


class SystemTableAdmin:
    """A ModelAdmin mixin for tables only the system writes (derived reporting
    rows, counters, sweep and job state): viewable, never added, changed or
    deleted by hand.

    A row still goes when what it belongs to is deleted (a lead's funnel row
    with the lead): that delete's confirmation asks this admin about the
    cascaded rows, and outside this admin's own pages the answer is the
    user's ordinary delete permission."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        if self._is_own_page(request):
            return False
        return super().has_delete_permission(request, obj)

    def _is_own_page(self, request) -> bool:
        match = getattr(request, "resolver_match", None)
        if match is None or not match.url_name:
            return True
        opts = self.model._meta
        return match.url_name.startswith(f"{opts.app_label}_{opts.model_name}_")

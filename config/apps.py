from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class ConfigConfig(AppConfig):
    name = "config"
    verbose_name = "Accord configuration"

    def ready(self):
        from django.db.models.signals import post_migrate

        from config import roles

        # Permissions of models added by later migrations reach the role groups.
        post_migrate.connect(roles.sync_after_migrate, dispatch_uid="accord-roles-sync")

        from django.contrib import admin

        from config.admin import users_and_groups_audited

        users_and_groups_audited(admin.site)


class AccordAdminConfig(AdminConfig):
    default_site = "config.backoffice.AccordAdminSite"

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and tenancy"


class AdminConfig(admin_apps.AdminConfig):
    """Django's admin with the portal's site: operators only, second factor, audited."""

    default = False  # named in INSTALLED_APPS; AccountsConfig stays this module's default

    default_site = "accounts.admin_site.AdminSite"

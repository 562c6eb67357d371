from django.conf import settings
from django.db import migrations, models

import leads.models

# Frozen here: the constraint below holds this list; a later change to
# PUBLIC_MAIL_DOMAINS comes with its own migration.
PUBLIC_MAIL_DOMAINS = [
    "126.com", "163.com", "aol.com", "att.net", "comcast.net", "fastmail.com", "free.fr",
    "gmail.com", "gmx.com", "gmx.de", "gmx.net", "googlemail.com", "hey.com", "hotmail.co.uk",
    "hotmail.com", "icloud.com", "laposte.net", "libero.it", "live.com", "mac.com", "mail.com",
    "me.com", "msn.com", "orange.fr", "outlook.com", "proton.me", "protonmail.com", "qq.com",
    "t-online.de", "tutanota.com", "verizon.net", "web.de", "yahoo.co.uk", "yahoo.com",
    "yandex.com", "yandex.ru", "ymail.com", "zoho.com",
]  # fmt: skip


def public_domains_forget(apps, schema_editor):
    """Accounts lose a public mail domain (it named no company); leads given one
    as their company domain fall back to their email's, as new leads do."""
    Account = apps.get_model("leads", "Account")
    Lead = apps.get_model("leads", "Lead")
    Account.objects.filter(domain__in=PUBLIC_MAIL_DOMAINS).update(domain="")
    public = set(PUBLIC_MAIL_DOMAINS)
    for lead in Lead.objects.filter(company_domain__in=PUBLIC_MAIL_DOMAINS).only("id", "email"):
        domain = lead.email.rsplit("@", 1)[-1].lower() if "@" in lead.email else ""
        Lead.objects.filter(pk=lead.pk).update(company_domain="" if domain in public else domain)


class Migration(migrations.Migration):
    """Public mail domains never match an account: no account may have one
    (validated for forms, the admin and imports; a constraint in the database).
    And an index for the lead list's "stage changed recently" sort over all
    stages, which lead_board_idx serves only within the board's stages."""

    dependencies = [
        ("leads", "0008_touchpoint_api_key_no_own_index"),
        ("sla", "0007_routing_rotation_and_employee_band"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="account",
            name="domain",
            field=models.CharField(
                blank=True,
                help_text="The company's web domain, e.g. acme.com (not a public mail domain).",
                max_length=254,
                validators=[leads.models.validate_account_domain],
            ),
        ),
        migrations.RunPython(public_domains_forget, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="account",
            constraint=models.CheckConstraint(
                condition=models.Q(("domain__in", PUBLIC_MAIL_DOMAINS), _negated=True),
                name="account_domain_not_public_mail",
                violation_error_message="A public mail domain cannot be an account's domain.",
            ),
        ),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(fields=["-stage_changed_at", "-id"], name="lead_changed_keyset_idx"),
        ),
    ]

"""The starting reason codes and objections; RevOps admins edit them in the admin."""

from django.db import migrations

REASONS = [
    # code, label, applies_to, description
    (
        "not-icp-fit",
        "Not an ICP fit",
        ["reject", "disqualify"],
        "The company is outside the ideal customer profile (size, industry, region).",
    ),
    (
        "wrong-persona",
        "Wrong persona",
        ["reject", "disqualify"],
        "The person is not a buyer, champion or evaluator for us.",
    ),
    (
        "no-budget",
        "No budget",
        ["reject", "disqualify", "loss"],
        "No money allocated, now or this year.",
    ),
    (
        "no-timing",
        "No timing",
        ["reject", "disqualify", "loss"],
        "Interested, but not buying in the next two quarters.",
    ),
    (
        "bad-data",
        "Bad data",
        ["reject", "disqualify"],
        "Fake, incomplete or unreachable contact details.",
    ),
    (
        "duplicate",
        "Duplicate",
        ["reject", "disqualify"],
        "Another lead already covers this person.",
    ),
    (
        "existing-customer",
        "Existing customer",
        ["reject", "disqualify"],
        "Belongs to account management, not new business.",
    ),
    (
        "competitor",
        "Competitor",
        ["reject", "disqualify"],
        "Works for a competitor (research, not buying).",
    ),
    (
        "student-job-seeker",
        "Student or job seeker",
        ["reject", "disqualify"],
        "Downloaded content for study or a job search.",
    ),
    (
        "no-response",
        "No response",
        ["reject", "disqualify"],
        "No answer after the agreed number of attempts.",
    ),
    ("lost-to-competitor", "Lost to a competitor", ["loss"], "The buyer chose a competitor."),
    ("no-decision", "No decision", ["loss"], "The buyer stayed with the status quo."),
    ("price", "Price", ["loss"], "Our price or packaging did not fit."),
    ("product-fit", "Product fit", ["loss"], "Missing capability or integration."),
]

OBJECTIONS = [
    "Too expensive",
    "Already using a competitor",
    "No time to evaluate now",
    "Needs approval from IT or security",
    "Missing integration",
    "Not a priority this quarter",
    "Happy with the current process",
    "Contract lock-in with current vendor",
]


def seed(apps, schema_editor):
    FeedbackReason = apps.get_model("leads", "FeedbackReason")
    Objection = apps.get_model("leads", "Objection")
    for position, (code, label, applies_to, description) in enumerate(REASONS):
        FeedbackReason.objects.get_or_create(
            code=code,
            defaults={
                "label": label,
                "applies_to": applies_to,
                "description": description,
                "position": position,
            },
        )
    for label in OBJECTIONS:
        Objection.objects.get_or_create(label=label)


class Migration(migrations.Migration):
    dependencies = [("leads", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

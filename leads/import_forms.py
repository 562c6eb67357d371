"""Forms of the CSV import pages: the upload, and the column mapping with options."""

from django import forms

from leads.import_services import job_columns, job_options
from leads.importing import (
    DEFAULT_STAGE_MAPPING,
    ImportOptions,
    fields_for,
    pairs_format,
    pairs_parse,
)
from leads.models import ImportJob, OpportunityStage

NOT_IMPORTED = "— not imported —"
DATE_ORDERS = [
    ("", "ISO only: 2017-03-01"),
    ("mdy", "Month first: 03/01/2017 is March 1"),
    ("dmy", "Day first: 01/03/2017 is March 1"),
]


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(label="What the file holds", choices=ImportJob.Kind.choices)
    file = forms.FileField(
        label="CSV file",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.tsv,text/csv,text/plain"}),
        help_text="Comma, semicolon or tab separated; UTF-8 (or Windows-1252) text.",
    )


class ImportMappingForm(forms.Form):
    """One select per Accord field (`map_<field>`), choosing a column of the
    file, plus the options that apply to the job's kind."""

    def __init__(self, *args, job: ImportJob, samples: dict[str, list[str]] | None = None, **kw):
        super().__init__(*args, **kw)
        self.job = job
        self.import_fields = fields_for(job.kind)
        samples = samples or {}
        choices = [("", NOT_IMPORTED)]
        for header in job.headers:
            example = ", ".join(v for v in samples.get(header, []) if v)[:60]
            choices.append((header, f"{header} (e.g. {example})" if example else header))
        current = job_columns(job)
        for f in self.import_fields:
            self.fields[f"map_{f.name}"] = forms.ChoiceField(
                label=f.label,
                choices=choices,
                required=f.required,
                initial=current.get(f.name, ""),
                help_text=f.help,
                error_messages={"required": f"Choose the column that holds {f.label}."},
            )
        options = job_options(job)
        if job.kind == ImportJob.Kind.OPPORTUNITIES:
            self.fields["create_missing_accounts"] = forms.BooleanField(
                label="Create missing accounts",
                required=False,
                initial=options.create_missing_accounts,
                help_text="A deal naming an account Accord does not have creates it; "
                "off, such rows are rejected. Blank accounts are always allowed.",
            )
            self.fields["stage_mapping"] = forms.CharField(
                label="Stage mapping",
                required=False,
                initial=pairs_format(options.stage_mapping),
                widget=forms.Textarea(attrs={"rows": 4, "placeholder": "Pitching = demo"}),
                help_text="One per line: stage in your file = Accord stage ("
                + ", ".join(OpportunityStage.values)
                + "). Already understood: Accord's own stages and "
                + ", ".join(f"{k} = {v}" for k, v in DEFAULT_STAGE_MAPPING.items())
                + ".",
            )
        if job.kind in (ImportJob.Kind.ACCOUNTS, ImportJob.Kind.LEADS):
            self.fields["industry_aliases"] = forms.CharField(
                label="Industry corrections",
                required=False,
                initial=pairs_format(options.industry_aliases),
                widget=forms.Textarea(attrs={"rows": 3, "placeholder": "technolgy = technology"}),
                help_text="One per line: industry as written = industry to store. "
                "Without a line, industries are kept as given.",
            )
        self.fields["date_order"] = forms.ChoiceField(
            label="Dates with slashes",
            choices=DATE_ORDERS,
            required=False,
            initial=options.date_order,
            help_text="How to read dates such as 03/01/2017. ISO dates always work.",
        )

    def mapping_rows(self):
        """(ImportField, bound field) for the template, in the fields' order."""
        return [(f, self[f"map_{f.name}"]) for f in self.import_fields]

    def option_fields(self):
        return [self[name] for name in self.fields if not name.startswith("map_")]

    def clean_stage_mapping(self):
        try:
            return pairs_parse(
                self.cleaned_data.get("stage_mapping", ""),
                allowed_values=OpportunityStage.values,
            )
        except ValueError as error:
            raise forms.ValidationError(str(error)) from error

    def clean_industry_aliases(self):
        try:
            return pairs_parse(self.cleaned_data.get("industry_aliases", ""))
        except ValueError as error:
            raise forms.ValidationError(str(error)) from error

    def mapping(self) -> dict[str, str]:
        return {
            f.name: self.cleaned_data[f"map_{f.name}"]
            for f in self.import_fields
            if self.cleaned_data.get(f"map_{f.name}")
        }

    def options(self) -> ImportOptions:
        data = self.cleaned_data
        return ImportOptions(
            create_missing_accounts=data.get("create_missing_accounts", True),
            stage_mapping=data.get("stage_mapping") or {},
            industry_aliases=data.get("industry_aliases") or {},
            date_order=data.get("date_order") or "",
        )

    def mapping_errors_add(self, errors: dict[str, list[str]]) -> None:
        """Show the engine's mapping errors beside the fields they are about."""
        for name, messages in errors.items():
            target = f"map_{name}" if f"map_{name}" in self.fields else None
            for message in messages:
                self.add_error(target, message)

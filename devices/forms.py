"""Input forms of the devices pages. Rules live in services; forms parse."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from devices.fleet_services import NOTE_MAX_CHARS, SNOOZE_MAX_HOURS, ContractAction
from devices.models import Credential, TelemetryPolicy


class CredentialForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"), choices=Credential.Kind.choices, widget=forms.RadioSelect
    )
    name = forms.CharField(
        label=_("Name"),
        max_length=200,
        required=False,
        help_text=_("Where it runs, e.g. 'Front office PC'."),
    )
    site: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        label=_("Site"),
        queryset=None,
        required=False,
        help_text=_("Collectors register the printers they find to this site."),
    )
    serial = forms.CharField(
        label=_("Serial number"),
        max_length=128,
        required=False,
        help_text=_("Direct connect only: the printer's serial."),
    )

    def __init__(self, *args: Any, sites: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["site"]
        field.queryset = sites
        field.label_from_instance = lambda site: f"{site.customer.name} / {site.name}"


class RotateForm(forms.Form):
    grace_hours = forms.IntegerField(
        label=_("Grace period (hours)"),
        min_value=0,
        max_value=720,
        initial=24,
        help_text=_("The old secret keeps working this long, so you can update the collector."),
    )


class LinesField(forms.CharField):
    """One value per line (or comma-separated)."""

    widget = forms.Textarea(attrs={"rows": 4})

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value


class CollectorConfigForm(forms.Form):
    ranges = LinesField(
        label=_("Networks"),
        required=False,
        help_text=_(
            "Networks to scan, one per line: 192.0.2.0/24, 192.0.2.10-192.0.2.50 or single "
            "addresses, at most 65,536 addresses each. Empty: the collector's own subnet."
        ),
    )
    communities = LinesField(
        label=_("Communities"), help_text=_("SNMP v1/v2c communities to try, one per line.")
    )
    poll_interval_minutes = forms.IntegerField(
        label=_("Poll interval (minutes)"),
        min_value=15,
        max_value=1440,
        help_text=_("How often each printer is polled (at least 15)."),
    )
    upload_interval_minutes = forms.IntegerField(
        label=_("Upload interval (minutes)"), min_value=1, max_value=1440
    )


class TelemetryPolicyForm(forms.Form):
    job_names = forms.ChoiceField(label=_("Job names"), choices=TelemetryPolicy.Personal.choices)
    user_names = forms.ChoiceField(label=_("User names"), choices=TelemetryPolicy.Personal.choices)


class DeviceRenameForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=200,
        required=False,
        help_text=_("The portal's label, e.g. 'Reception plotter'. Empty: model and serial."),
    )


def _site_field(sites: Any, field: Any) -> None:
    field.queryset = sites
    field.label_from_instance = lambda site: f"{site.customer.name} / {site.name}"


class DeviceMoveForm(forms.Form):
    site: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        label=_("Site"),
        queryset=None,
        help_text=_("A site of this customer or of another of your customers."),
    )

    def __init__(self, *args: Any, sites: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _site_field(sites, self.fields["site"])


class ContractDecisionForm(forms.Form):
    """The decision on a running contract membership; the service says when it is needed."""

    contract_action = forms.ChoiceField(
        label=_("Contract"),
        choices=ContractAction.CHOICES,
        widget=forms.RadioSelect,
        required=False,
    )
    effective_on = forms.DateField(
        label=_("Effective on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The first day the contract no longer bills this printer."),
    )


class DeviceMoveConfirmForm(ContractDecisionForm):
    site: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, sites: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _site_field(sites, self.fields["site"])


class DeviceNoteForm(forms.Form):
    body = forms.CharField(
        label=_("Note"), max_length=NOTE_MAX_CHARS, widget=forms.Textarea(attrs={"rows": 3})
    )


SNOOZE_CHOICES = [
    (1, _("1 hour")),
    (4, _("4 hours")),
    (24, _("1 day")),
    (72, _("3 days")),
    (168, _("1 week")),
]


class AlertSnoozeForm(forms.Form):
    hours = forms.TypedChoiceField(label=_("Snooze for"), choices=SNOOZE_CHOICES, coerce=int)

    def clean_hours(self) -> int:
        hours: int = self.cleaned_data["hours"]
        if not 1 <= hours <= SNOOZE_MAX_HOURS:
            raise forms.ValidationError(_("Choose how long."))
        return hours


class DeviceImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Columns: customer, site, serial (empty for a customer or site without "
            "printers), and optionally name, model, manufacturer, address, postal_code, city, "
            "country."
        ),
    )

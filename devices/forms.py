"""Input forms of the devices pages. Rules live in services; forms parse."""

from __future__ import annotations

from typing import Any

from django import forms

from devices.models import Credential, TelemetryPolicy


class CredentialForm(forms.Form):
    kind = forms.ChoiceField(choices=Credential.Kind.choices, widget=forms.RadioSelect)
    name = forms.CharField(
        max_length=200, required=False, help_text="Where it runs, e.g. 'Front office PC'."
    )
    site: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None,
        required=False,
        help_text="Collectors register the printers they find to this site.",
    )
    serial = forms.CharField(
        max_length=128, required=False, help_text="Direct connect only: the printer's serial."
    )

    def __init__(self, *args: Any, sites: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["site"]
        field.queryset = sites
        field.label_from_instance = lambda site: f"{site.customer.name} / {site.name}"


class RotateForm(forms.Form):
    grace_hours = forms.IntegerField(
        min_value=0,
        max_value=720,
        initial=24,
        help_text="The old secret keeps working this long, so you can update the collector.",
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
        required=False,
        help_text="Networks to scan, one per line: 192.0.2.0/24, 192.0.2.10-192.0.2.50 or single "
        "addresses, at most 65,536 addresses each. Empty: the collector's own subnet.",
    )
    communities = LinesField(help_text="SNMP v1/v2c communities to try, one per line.")
    poll_interval_minutes = forms.IntegerField(
        min_value=15, max_value=1440, help_text="How often each printer is polled (at least 15)."
    )
    upload_interval_minutes = forms.IntegerField(min_value=1, max_value=1440)


class TelemetryPolicyForm(forms.Form):
    job_names = forms.ChoiceField(choices=TelemetryPolicy.Personal.choices)
    user_names = forms.ChoiceField(choices=TelemetryPolicy.Personal.choices)

"""Forms of the billing pages. They parse; the services decide."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from billing.models import COUNTER_LABELS, Contract, CounterCorrection, PlanRate
from billing.pricing import MONEY, UNITS, Tier, tiers_valid, validate_period_day
from billing.services import RateSpec, Terms
from portal.money import CURRENCIES

# The counters of the wire contract that a plan may price.
COUNTERS = list(COUNTER_LABELS.items())
DATE = forms.DateInput(attrs={"type": "date"})


class NumberField(forms.DecimalField):
    """A DecimalField that refuses NaN, sNaN and infinities as it parses.

    Django's own checks finiteness only in validate(); has_changed() compares the parsed value
    first, and comparing a signalling NaN raises InvalidOperation (a 500 from a formset)."""

    def to_python(self, value: Any) -> Decimal | None:  # type: ignore[override]
        number = super().to_python(value)
        if number is not None and not number.is_finite():
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return number


def parse_tiers(text: str) -> tuple[Tier, ...]:
    """ "0: 0.012; 5000: 0.009" -> [0, 5000) at 0.012, [5000, ∞) at 0.009, in the order written
    (billing.pricing.tiers_valid then refuses bounds that do not increase)."""
    starts: list[tuple[Decimal, Decimal]] = []
    for chunk in text.replace("\n", ";").split(";"):
        if not chunk.strip():
            continue
        try:
            start, price = (part.strip() for part in chunk.split(":"))
            starts.append((Decimal(start), Decimal(price)))
        except (ValueError, InvalidOperation) as exc:
            raise forms.ValidationError(
                _("Write tiers as 'from: price; …' (%(strip)s).") % {"strip": repr(chunk.strip())}
            ) from exc
    return tuple(
        Tier(start, starts[i + 1][0] if i + 1 < len(starts) else None, price)
        for i, (start, price) in enumerate(starts)
    )


def tiers_text(tiers: Any) -> str:
    return "; ".join(f"{t.from_units.normalize():f}: {t.unit_price.normalize():f}" for t in tiers)


class TermsForm(forms.Form):
    effective_from = forms.DateField(
        label=_("Effective from"), widget=DATE, help_text=_("The first period these terms price.")
    )
    monthly_fee_per_device = NumberField(
        label=_("Monthly fee per device"), min_value=0, **MONEY._asdict(), initial=0
    )
    minimum_monthly = NumberField(
        min_value=0, **MONEY._asdict(), initial=0, label=_("Minimum monthly commitment")
    )
    tax_rate = NumberField(
        min_value=0, max_value=100, decimal_places=2, initial=0, label=_("Tax rate (%)")
    )


class PlanForm(TermsForm):
    name = forms.CharField(label=_("Name"), max_length=200)
    currency = forms.ChoiceField(
        label=_("Currency"), choices=[(c, c) for c in CURRENCIES], initial="EUR"
    )
    description = forms.CharField(
        label=_("Description"), widget=forms.Textarea(attrs={"rows": 2}), required=False
    )

    field_order = ["name", "currency", "description"]


class RateForm(forms.Form):
    counter = forms.ChoiceField(label=_("Counter"), choices=[("", "—"), *COUNTERS], required=False)
    media_type = forms.CharField(label=_("Media type"), max_length=128, required=False)
    color = forms.CharField(max_length=64, required=False, label=_("Colour"))
    mode = forms.ChoiceField(
        label=_("Tiers"), choices=PlanRate.Mode.choices, initial=PlanRate.Mode.GRADUATED
    )
    scope = forms.ChoiceField(choices=PlanRate.Scope.choices, label=_("Allowance"))
    included_units = NumberField(
        label=_("Included units"), min_value=0, **UNITS._asdict(), initial=0, required=False
    )
    tiers = forms.CharField(
        label=_("Prices"),
        required=False,
        help_text=_("from: unit price; … e.g. 0: 0.012; 5000: 0.009"),
        widget=forms.TextInput(attrs={"placeholder": "0: 0.012; 5000: 0.009"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("counter"):
            try:
                tiers = parse_tiers(data.get("tiers") or "")
            except forms.ValidationError as error:
                self.add_error("tiers", error)
                return data
            problem = tiers_valid(tiers)
            if problem:
                self.add_error("tiers", problem)
            else:
                data["parsed_tiers"] = tiers
        return data


RateFormSet = forms.formset_factory(RateForm, extra=3, max_num=40)


def terms_from(form: TermsForm, rates: Any) -> Terms:
    data = form.cleaned_data
    specs = tuple(
        RateSpec(
            counter=r.cleaned_data["counter"],
            media_type=r.cleaned_data.get("media_type", "").strip(),
            color=r.cleaned_data.get("color", "").strip(),
            mode=r.cleaned_data["mode"],
            scope=r.cleaned_data["scope"],
            included_units=r.cleaned_data.get("included_units") or Decimal(0),
            tiers=r.cleaned_data["parsed_tiers"],
        )
        for r in rates.forms
        if r.cleaned_data.get("counter")
    )
    return Terms(
        effective_from=data["effective_from"],
        monthly_fee_per_device=data["monthly_fee_per_device"],
        minimum_monthly=data["minimum_monthly"],
        tax_rate=data["tax_rate"],
        rates=specs,
    )


class ContractForm(forms.Form):
    customer: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        label=_("Customer"), queryset=None
    )
    plan: forms.ModelChoiceField[Any] = forms.ModelChoiceField(label=_("Price plan"), queryset=None)
    reference = forms.CharField(label=_("Reference"), max_length=100)
    purchase_order = forms.CharField(max_length=100, required=False, label=_("Purchase order"))
    anchor_day = forms.IntegerField(
        label=_("Period start day"),
        min_value=1,
        max_value=28,
        initial=1,
        help_text=_("Periods start on this day each month."),
    )
    starts_on = forms.DateField(label=_("Starts on"), widget=DATE)
    ends_on = forms.DateField(
        label=_("Ends on"),
        widget=DATE,
        required=False,
        help_text=_("First day not covered."),
    )
    missing_data = forms.ChoiceField(
        choices=Contract.MissingData.choices, label=_("When a printer sends no readings")
    )

    def __init__(self, *args: Any, customers: Any, plans: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = customers  # type: ignore[attr-defined]
        self.fields["plan"].queryset = plans  # type: ignore[attr-defined]


class ContractEditForm(forms.Form):
    purchase_order = forms.CharField(max_length=100, required=False, label=_("Purchase order"))
    ends_on = forms.DateField(
        label=_("Ends on"),
        widget=DATE,
        required=False,
        help_text=_("First day not covered."),
    )
    missing_data = forms.ChoiceField(
        choices=Contract.MissingData.choices, label=_("When a printer sends no readings")
    )


class DeviceAddForm(forms.Form):
    device: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label=_("Printer"))
    joined_on = forms.DateField(widget=DATE, label=_("Billed from"))

    def __init__(self, *args: Any, devices: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["device"].queryset = devices  # type: ignore[attr-defined]


class DeviceLeaveForm(forms.Form):
    left_on = forms.DateField(widget=DATE, label=_("First day no longer billed"))


class CorrectionForm(forms.Form):
    counter = forms.ChoiceField(label=_("Counter"), choices=COUNTERS)
    media_type = forms.CharField(label=_("Media type"), max_length=128, required=False)
    color = forms.CharField(max_length=64, required=False, label=_("Colour"))
    kind = forms.ChoiceField(label=_("Kind"), choices=CounterCorrection.Kind.choices)
    effective_at = forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), label=_("When (UTC)")
    )
    value = NumberField(
        label=_("Value"),
        min_value=0,
        decimal_places=4,
        help_text=_("The meter reading, or the new board's count."),
    )
    old_value = NumberField(
        min_value=0,
        decimal_places=4,
        required=False,
        label=_("Old board's last count"),
        help_text=_("Board swaps only: the old board's final reading, if known."),
    )
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 2}))


class ComputeForm(forms.Form):
    period_start = forms.DateField(
        widget=DATE, label=_("A day in the period"), validators=[validate_period_day]
    )

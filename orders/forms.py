"""Input forms of the orders pages. Rules live in the services; forms parse."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.models import EmailLog, Order, Product, ReorderPolicy
from portal import money


class ProductForm(forms.Form):
    sku = forms.CharField(label=_("SKU"), max_length=64)
    part_number = forms.CharField(
        label=_("Manufacturer part number"), max_length=128, required=False
    )
    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=Product.Kind.choices)
    color = forms.CharField(label=_("Colour"), max_length=64, required=False)
    rated_yield = forms.IntegerField(label=_("Rated yield"), min_value=1, required=False)
    yield_unit = forms.ChoiceField(label=_("Yield unit"), choices=Product.YieldUnit.choices)
    compatible_models = forms.CharField(
        label=_("Compatible models"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=_("One printer model per line, as the printers report it."),
    )
    price = forms.DecimalField(label=_("Price"), min_value=0, max_digits=12, decimal_places=2)
    currency = forms.ChoiceField(label=_("Currency"), choices=[(c, c) for c in money.CURRENCIES])
    is_active = forms.BooleanField(label=_("Offered to customers"), required=False, initial=True)


class OrderLineForm(forms.Form):
    product = forms.TypedChoiceField(coerce=int, label=_("Product"))
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=999, initial=1)

    def __init__(self, *args: Any, products: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["product"]
        field.choices = [(p.pk, f"{p.sku} · {p.name} · {p.price} {p.currency}") for p in products]


class OrderForm(OrderLineForm):
    site = forms.TypedChoiceField(coerce=int, label=_("Deliver to"))
    supply_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    note = forms.CharField(
        label=_("Note"), widget=forms.Textarea(attrs={"rows": 2}), required=False
    )

    field_order = ["site", "product", "quantity", "note", "supply_id"]

    def __init__(self, *args: Any, sites: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["site"]
        field.choices = [(s.pk, f"{s.customer.name} / {s.name}") for s in sites]


class TransitionForm(forms.Form):
    to = forms.ChoiceField(label=_("New status"), choices=Order.Status.choices)
    note = forms.CharField(label=_("Note"), max_length=500, required=False)
    carrier = forms.CharField(label=_("Carrier"), max_length=64, required=False)
    tracking_number = forms.CharField(label=_("Tracking number"), max_length=128, required=False)


class PolicyForm(forms.Form):
    customer = forms.TypedChoiceField(label=_("Customer"), coerce=int)
    device = forms.TypedChoiceField(
        coerce=int, empty_value=None, required=False, label=_("Device override")
    )
    threshold_percent = forms.IntegerField(
        min_value=0,
        max_value=100,
        initial=ReorderPolicy.DEFAULT_THRESHOLD,
        label=_("Threshold (%)"),
    )
    lead_time_days = forms.IntegerField(
        min_value=0,
        max_value=365,
        initial=ReorderPolicy.DEFAULT_LEAD_TIME_DAYS,
        label=_("Lead time (days)"),
        help_text=_("Act when the forecast says the supply empties within this many days."),
    )
    mode = forms.ChoiceField(
        label=_("Mode"), choices=ReorderPolicy.Mode.choices, initial=ReorderPolicy.Mode.ALERT
    )
    requires_approval = forms.BooleanField(
        required=False,
        label=_("Buyers' orders need a customer admin's approval"),
        help_text=_("Customer-wide; ignored for a device override."),
    )

    def __init__(self, *args: Any, customers: Any, devices: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["customer"]
        field.choices = [(c.pk, c.name) for c in customers]
        field = self.fields["device"]
        field.choices = [("", _("All devices (customer policy)"))] + [
            (d.pk, f"{d.customer.name} / {d}") for d in devices
        ]


class PreferenceForm(forms.Form):
    def __init__(self, *args: Any, current: dict[str, bool], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for kind in EmailLog.NOTIFICATION_KINDS:
            label = EmailLog.Kind(kind).label
            self.fields[kind] = forms.BooleanField(
                required=False,
                label=_("%(label)s emails") % {"label": label},
                initial=current.get(kind, True),
            )

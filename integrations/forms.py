from django import forms

from integrations.models import SUBSCRIBABLE, Event, WebhookDelivery


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        help_text="Where Inkmeter POSTs each event, signed with the endpoint's secret.",
    )
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(
        choices=[(e, Event(e).label) for e in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
    )
    is_active = forms.BooleanField(
        label="Active", required=False, initial=True, help_text="Off: no events are sent."
    )


class DeliveryFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Any status"), *WebhookDelivery.Status.choices], required=False
    )

from django import forms
from django.utils.translation import gettext_lazy as _

from integrations.models import SUBSCRIBABLE, Event, WebhookDelivery


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(
        label=_("URL"),
        max_length=500,
        assume_scheme="https",
        help_text=_("Where Inkmeter POSTs each event, signed with the endpoint's secret."),
    )
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=[(e, Event(e).label) for e in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
    )
    is_active = forms.BooleanField(
        label=_("Active"), required=False, initial=True, help_text=_("Off: no events are sent.")
    )


class DeliveryFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("Any status")), *WebhookDelivery.Status.choices],
        required=False,
    )

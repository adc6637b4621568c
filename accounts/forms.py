"""Input forms of the accounts pages. Validation of rules lives in services; forms parse."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Site
from portal.tenancy import CUSTOMER_ROLES, RESELLER_ROLES, Role


class CustomerForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    account_number = forms.CharField(label=_("Account number"), max_length=64, required=False)
    billing_email = forms.EmailField(
        label=_("Billing email"),
        required=False,
        help_text=_("Finalised statements are emailed here, with the PDF."),
    )
    billing_address = forms.CharField(
        label=_("Billing address"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=_("Printed on usage statements."),
    )
    language = forms.ChoiceField(
        label=_("Language of documents"),
        required=False,
        help_text=_(
            "Statement PDFs and the emails to the billing contact and the sites' contacts are "
            "written in it; people with an account choose their own."
        ),
    )
    notes = forms.CharField(
        label=_("Notes"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from portal import i18n

        super().__init__(*args, **kwargs)
        field: Any = self.fields["language"]
        field.choices = [("", _("The portal's default")), *i18n.language_choices()]


class SiteForm(forms.ModelForm):
    class Meta:
        model = Site
        fields = [
            "name",
            "address_line1",
            "address_line2",
            "postal_code",
            "city",
            "country",
            "contact_name",
            "contact_email",
            "contact_phone",
        ]
        labels = {
            "name": _("Name"),
            "address_line1": _("Address"),
            "address_line2": _("Address (line 2)"),
            "postal_code": _("Postal code"),
            "city": _("City"),
            "country": _("Country"),
            "contact_name": _("Contact name"),
            "contact_email": _("Contact email"),
            "contact_phone": _("Contact phone"),
        }
        help_texts = {"country": _("ISO 3166 code, e.g. DE")}

    def validate_unique(self) -> None:
        """Uniqueness is the service's rule (it answers with a field error)."""


ROLE_CHOICES = [(r.value, r.label) for r in Role if r in RESELLER_ROLES | CUSTOMER_ROLES]


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email"))
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES)
    customer: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        label=_("Customer"),
        queryset=None,
        required=False,
        help_text=_("Only for customer roles."),
    )

    def __init__(self, *args: Any, customers: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = customers  # type: ignore[attr-defined]


class MembershipRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES)


class ApiTokenForm(InvitationForm):
    email = None  # type: ignore[assignment]
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("Where the token is used, e.g. 'ERP export'."),
    )

    field_order = ["name", "role", "customer"]


class ResellerForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    slug = forms.SlugField(
        label=_("Short name"),
        max_length=64,
        required=False,
        help_text=_("Derived from the name if empty."),
    )
    support_email = forms.EmailField(label=_("Support email"), required=False)
    address = forms.CharField(
        label=_("Address"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )


class ResellerSettingsForm(forms.Form):
    """A reseller admin's own settings; the logo is checked by services.reseller_update."""

    name = forms.CharField(label=_("Name"), max_length=200)
    address = forms.CharField(
        label=_("Address"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=_("Printed on statements, one line per row."),
    )
    support_email = forms.EmailField(
        label=_("Support email"),
        required=False,
        help_text=_("Where your customers write for help."),
    )
    logo = forms.FileField(
        label=_("Logo"),
        required=False,
        help_text=_("PNG or JPEG, at most 512 KiB. Printed on statements."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg"}),
    )


class PreferencesForm(forms.Form):
    """How the portal writes numbers, dates and times for the signed-in user; choices are
    checked again by services.user_preferences_update."""

    language = forms.ChoiceField(
        label=_("Language"),
        required=False,
        help_text=_("Pages and the emails you receive are written in this language."),
    )
    locale = forms.ChoiceField(
        label=_("Numbers and dates"),
        required=False,
        help_text=_("Without a choice, the portal follows your browser's language."),
    )
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        required=False,
        help_text=_("Times on every page are shown in this zone."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from portal import formatting, i18n

        super().__init__(*args, **kwargs)
        field: Any = self.fields["language"]
        field.choices = [("", _("Follow my browser")), *i18n.language_choices()]
        field = self.fields["locale"]
        field.choices = [("", _("Follow my browser")), *formatting.locale_choices()]
        field = self.fields["time_zone"]
        field.choices = [("", _("The portal's default")), *formatting.time_zone_choices()]

"""Every form of the portal speaks the reader's language: a field without its own label gets
Django's automatic one ("Support email" from `support_email`), which no catalog translates, so
a German page would show English words beside German ones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django import forms
from django.urls import get_resolver
from django.utils.functional import Promise
from django.utils.translation import override

PROJECT_APPS = ("accounts", "billing", "devices", "integrations", "orders", "portal")


def project_forms() -> list[type[forms.BaseForm]]:
    assert get_resolver().url_patterns  # imports every view, so every form class is defined
    found: list[type[forms.BaseForm]] = []

    def walk(cls: type[Any]) -> Iterator[type[Any]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    for cls in walk(forms.BaseForm):
        if cls.__module__.split(".")[0] in PROJECT_APPS and cls not in found:
            found.append(cls)
    return found


def words(text: Any) -> bool:
    """Whether a label is something a person reads (not a code such as 'EUR' or '-serial')."""
    return any(ch.isalpha() for ch in str(text)) and not str(text).isupper()


def untranslatable(form: type[forms.BaseForm]) -> list[str]:
    problems = []
    for name, field in form.base_fields.items():
        if isinstance(field.widget, forms.HiddenInput):
            continue
        where = f"{form.__module__}.{form.__name__}.{name}"
        if not isinstance(field.label, Promise):
            problems.append(f"{where}: label {field.label!r}")
        if field.help_text and not isinstance(field.help_text, Promise):
            problems.append(f"{where}: help text {field.help_text!r}")
        # A model choice's labels are the objects' names; other choices are written here.
        choices = field.choices if isinstance(field, forms.ChoiceField) else ()
        if isinstance(field, forms.ModelChoiceField):
            choices = ()
        for value, label in choices:
            if isinstance(label, Promise) or not words(label) or str(label) == str(value):
                continue
            problems.append(f"{where}: choice {label!r}")
    return problems


def test_the_walk_finds_the_forms() -> None:
    names = {cls.__name__ for cls in project_forms()}
    assert {"CustomerForm", "ResellerSettingsForm", "RateForm", "WebhookEndpointForm"} <= names
    assert len(names) > 30


@pytest.mark.parametrize("form", project_forms(), ids=lambda cls: cls.__name__)
def test_every_field_has_a_translatable_label_and_help_text(form: type[forms.BaseForm]) -> None:
    assert untranslatable(form) == []


def test_a_form_without_labels_is_caught() -> None:
    class Bare(forms.Form):
        support_email = forms.EmailField(help_text="Where customers write.")

    assert len(untranslatable(Bare)) == 2


def test_the_reseller_settings_read_in_german() -> None:
    from accounts.forms import ResellerSettingsForm

    with override("de"):
        html = str(ResellerSettingsForm())
    assert "Support email" not in html
    assert "Support-E-Mail" in html

"""Helpers shared by the portal pages of every app."""

from typing import Any

from django import forms
from django.core.paginator import Page, Paginator
from django.http import HttpRequest

from portal.errors import DomainError

PAGE_SIZE = 25


def paginate(request: HttpRequest, items: Any, per_page: int = PAGE_SIZE) -> Page[Any]:
    """One page of `items` from ?page=, clamped to the valid range."""
    return Paginator(items, per_page).get_page(request.GET.get("page"))


def form_error(form: forms.BaseForm, error: DomainError) -> None:
    """Show a service's refusal next to the fields it names, or above the form."""
    placed = False
    for field, messages in error.fields.items():
        if field in form.fields:
            for message in messages:
                form.add_error(field, message)
            placed = True
    if not placed:
        form.add_error(None, error.message)

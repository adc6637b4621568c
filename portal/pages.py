"""Helpers shared by the portal pages of every app."""

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from django import forms
from django.core.paginator import Page, Paginator
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from portal.errors import DomainError

PAGE_SIZE = 25

_M = TypeVar("_M", bound=Model)


class Listing(Generic[_M]):
    """The rows of a list page, read in two steps so that a page costs about the same at 100
    rows or 100,000: `rows` filters and sorts, with only the joins that those need, and
    `load` adds the joins, prefetches and per-row figures to the rows of one page. Sorting
    wide joined rows (or aggregating every row) to show 25 of them is what made the fleet's
    lists slow (issue 12).

    Django's Paginator and DRF's take it like a queryset: `count()` and a slice."""

    def __init__(self, rows: QuerySet[_M], load: Callable[[QuerySet[_M]], QuerySet[_M]]) -> None:
        self.rows = rows
        self.load = load

    def count(self) -> int:
        return self.rows.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key: slice) -> list[_M]:
        if not isinstance(key, slice):
            raise TypeError("a Listing is read a page (a slice) at a time")
        return self.fetch(list(self.rows.values_list("pk", flat=True)[key]))

    def fetch(self, keys: Sequence[Any]) -> list[_M]:
        """The rows with these primary keys that `rows` holds, loaded, in the keys' order."""
        if not keys:
            return []
        found = {row.pk: row for row in self.load(self.rows.filter(pk__in=keys).order_by())}
        return [found[key] for key in keys if key in found]


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

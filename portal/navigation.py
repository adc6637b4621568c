"""The sidebar: sections and links by role. Apps add their pages here; a link whose route does
not exist (an app not installed in this build) is left out rather than broken."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from portal.tenancy import ADMIN_ROLES, CUSTOMER_ROLES, RESELLER_ROLES, Role, TenantContext

EVERYONE = frozenset(Role) - {Role.SYSTEM}
RESELLER_SIDE = RESELLER_ROLES | {Role.OPERATOR}
FINANCE = frozenset({Role.RESELLER_ADMIN, Role.RESELLER_FINANCE, Role.OPERATOR})
REORDER_POLICY_EDITORS = frozenset(
    {Role.OPERATOR, Role.RESELLER_ADMIN, Role.RESELLER_SUPPORT, Role.CUSTOMER_ADMIN}
)


@dataclass(frozen=True)
class Link:
    label: str | Promise
    url_name: str
    roles: frozenset[Role]


SECTIONS: list[tuple[str | Promise, list[Link]]] = [
    (
        _("Overview"),
        [
            Link(_("Dashboard"), "dashboard", EVERYONE),
            Link(_("Devices"), "device-list", EVERYONE),
            Link(_("Supplies"), "supply-list", EVERYONE),
            Link(_("Alerts"), "alert-list", EVERYONE),
        ],
    ),
    (
        _("Business"),
        [
            Link(_("Customers"), "customer-list", RESELLER_SIDE),
            Link(_("Orders"), "order-list", EVERYONE),
            Link(_("Catalog"), "product-list", RESELLER_SIDE),
            Link(_("Statements"), "statement-list", FINANCE | CUSTOMER_ROLES),
            Link(_("Price plans"), "plan-list", FINANCE),
            Link(_("Contracts"), "contract-list", FINANCE),
        ],
    ),
    (
        _("Settings"),
        [
            Link(_("Reseller"), "reseller-settings", ADMIN_ROLES),
            Link(_("Collectors"), "credential-list", ADMIN_ROLES),
            Link(_("Collector health"), "collector-health", ADMIN_ROLES | {Role.RESELLER_SUPPORT}),
            Link(_("Users"), "user-list", ADMIN_ROLES),
            Link(_("API tokens"), "api-token-list", ADMIN_ROLES),
            Link(_("Webhooks"), "webhook-list", ADMIN_ROLES),
            Link(_("Audit log"), "audit-list", ADMIN_ROLES),
            Link(_("Reorder policies"), "policy-list", REORDER_POLICY_EDITORS),
            Link(_("Emails"), "email-list", EVERYONE),
        ],
    ),
]


def navigation_for(ctx: TenantContext | None, path: str) -> list[dict[str, object]]:
    if ctx is None:
        return []
    sections: list[dict[str, object]] = []
    current: dict[str, object] | None = None  # the longest link the path lies under
    for title, links in SECTIONS:
        items: list[dict[str, object]] = []
        for link in links:
            if ctx.role not in link.roles:
                continue
            try:
                url = reverse(link.url_name)
            except NoReverseMatch:
                continue
            item: dict[str, object] = {"label": link.label, "url": url, "active": False}
            under = path == url if url == "/" else path.startswith(url)
            if under and (current is None or len(url) > len(str(current["url"]))):
                current = item
            items.append(item)
        if items:
            sections.append({"title": title, "items": items})
    if current is not None:
        current["active"] = True
    return sections

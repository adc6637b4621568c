"""The sidebar: sections and links by role. Apps add their pages here; a link whose route does
not exist (an app not installed in this build) is left out rather than broken."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from portal.tenancy import ADMIN_ROLES, CUSTOMER_ROLES, RESELLER_ROLES, Role, TenantContext

EVERYONE = frozenset(Role) - {Role.SYSTEM}
RESELLER_SIDE = RESELLER_ROLES | {Role.OPERATOR}
FINANCE = frozenset({Role.RESELLER_ADMIN, Role.RESELLER_FINANCE, Role.OPERATOR})
REORDER_POLICY_EDITORS = frozenset(
    {Role.OPERATOR, Role.RESELLER_ADMIN, Role.RESELLER_SUPPORT, Role.CUSTOMER_ADMIN}
)


@dataclass(frozen=True)
class Link:
    label: str
    url_name: str
    roles: frozenset[Role]


SECTIONS: list[tuple[str, list[Link]]] = [
    (
        "Overview",
        [
            Link("Dashboard", "dashboard", EVERYONE),
            Link("Devices", "device-list", EVERYONE),
            Link("Supplies", "supply-list", EVERYONE),
            Link("Alerts", "alert-list", EVERYONE),
        ],
    ),
    (
        "Business",
        [
            Link("Customers", "customer-list", RESELLER_SIDE),
            Link("Orders", "order-list", EVERYONE),
            Link("Catalog", "product-list", RESELLER_SIDE),
            Link("Statements", "statement-list", FINANCE | CUSTOMER_ROLES),
            Link("Price plans", "plan-list", FINANCE),
            Link("Contracts", "contract-list", FINANCE),
        ],
    ),
    (
        "Settings",
        [
            Link("Reseller", "reseller-settings", ADMIN_ROLES),
            Link("Collectors", "credential-list", ADMIN_ROLES),
            Link("Collector health", "collector-health", ADMIN_ROLES | {Role.RESELLER_SUPPORT}),
            Link("Users", "user-list", ADMIN_ROLES),
            Link("API tokens", "api-token-list", ADMIN_ROLES),
            Link("Webhooks", "webhook-list", ADMIN_ROLES),
            Link("Audit log", "audit-list", ADMIN_ROLES),
            Link("Reorder policies", "policy-list", REORDER_POLICY_EDITORS),
            Link("Emails", "email-list", EVERYONE),
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

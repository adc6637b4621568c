from typing import Any

from django.http import HttpRequest

from portal.navigation import navigation_for
from portal.tenancy import ADMIN_ROLES


def tenant(request: HttpRequest) -> dict[str, Any]:
    """What the layout needs: the tenant context, the switcher and the sidebar by role."""
    ctx = getattr(request, "ctx", None)
    return {
        "ctx": ctx,
        "memberships": getattr(request, "memberships", []),
        "navigation": navigation_for(ctx, request.path),
        "can_admin": ctx is not None and ctx.role in ADMIN_ROLES,
        # No user on a request refused before authentication (a bad Host header's 400 page).
        "is_operator": bool(getattr(getattr(request, "user", None), "is_superuser", False)),
    }

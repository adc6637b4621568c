"""Attempt limits per client IP (and, for failed authentication, per key), counted in the
cache (Redis in production, shared by every web process; local memory in the demo and tests).

A limit is written like allauth's: "20/10m" is 20 attempts per 10 minutes. Windows are fixed:
cheap (one INCR) and good enough against guessing, which needs millions of attempts.

Without the cache (Redis down) nothing is counted and every attempt goes through: a guesser
gains the minutes of the outage, while refusing everyone would stop the collectors' telemetry,
which the protocol acknowledges whatever happens to the cache (protocol/telemetry-v1.md).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import redis
from allauth.core.internal.httpkit import get_client_ip
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.timezone import now

log = logging.getLogger(__name__)

# What the cache raises when its server is away: redis-py's errors (refused, reset, timed out).
CACHE_DOWN = (redis.RedisError, OSError)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


@dataclass(frozen=True)
class Rate:
    limit: int
    window_seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """'20/10m' -> 20 per 600 seconds; 'N/m' means one minute."""
        match = _RATE.match(text)
        if match is None:
            raise ValueError(f"not a rate limit like '20/10m': {text!r}")
        count, amount, unit = match.groups()
        return cls(limit=int(count), window_seconds=int(amount or 1) * _UNITS[unit])


def client_ip(request: HttpRequest) -> str:
    """The IP the limits count against: the same one allauth's login limits use, so one proxy
    setting (ALLAUTH_TRUSTED_PROXY_COUNT) serves both."""
    return get_client_ip(request) or "unknown"


def _key(scope: str, ident: str, rate: Rate) -> str:
    window = int(now().timestamp()) // rate.window_seconds
    return f"ratelimit:{scope}:{ident}:{rate.window_seconds}:{window}"


def hit(*, scope: str, ident: str, rate: str) -> bool:
    """Count one attempt; True when it is over the limit (the caller refuses it)."""
    parsed = Rate.parse(rate)
    key = _key(scope, ident, parsed)
    try:
        # add() is atomic and a no-op when the key exists, so racing first hits cannot reset it.
        cache.add(key, 0, timeout=parsed.window_seconds + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr: the first attempt of a window
            cache.add(key, 1, timeout=parsed.window_seconds + 1)
            count = 1
    except CACHE_DOWN as error:
        log.warning("attempt in %s not counted, the cache is down: %s", scope, error)
        return False
    return count > parsed.limit


def retry_after(*, rate: str) -> int:
    """Seconds until the current window ends, for a Retry-After header."""
    parsed = Rate.parse(rate)
    return parsed.window_seconds - int(now().timestamp()) % parsed.window_seconds


def too_many_attempts_page(request: HttpRequest, *, rate: str) -> HttpResponse:
    """The page a person sees past a limit (allauth's own limits render the same template)."""
    seconds = retry_after(rate=rate)
    response = render(request, "429.html", {"retry_after_minutes": -(-seconds // 60)}, status=429)
    response["Retry-After"] = str(seconds)
    return response


FAILURE_MESSAGE = "Too many failed authentication attempts; try again later."


def failure_hit(*, scope: str, ip: str, key: str, ip_rate: str, key_rate: str) -> int | None:
    """Count one failed authentication against the client's IP and against the key it named
    (a token's or credential's public key id; empty when it named none). Returns the seconds
    to wait when either is past its limit, else None.

    Only failures are counted, and a caller checks the credentials before it asks: valid ones
    always go through, so neither a guesser sharing a site's address nor one hammering a key
    from many addresses can lock out the sender that holds the secret."""
    waits = []
    if hit(scope=f"{scope}:ip", ident=ip, rate=ip_rate):
        waits.append(retry_after(rate=ip_rate))
    if key and hit(scope=f"{scope}:key", ident=_key_ident(key), rate=key_rate):
        waits.append(retry_after(rate=key_rate))
    return max(waits) if waits else None


def _key_ident(key: str) -> str:
    # The key comes from the request as sent: any length, any characters; the cache key must not.
    return hashlib.sha256(key.encode(errors="replace")).hexdigest()[:32]


def failure_response(wait: int) -> HttpResponse:
    """The API's answer past a limit: 429 with the error body and Retry-After."""
    from portal.api import error_body

    response = JsonResponse(error_body("rate_limited", FAILURE_MESSAGE), status=429)
    response["Retry-After"] = str(wait)
    return response


def auth_failures_limited(
    setting: str, *, key_setting: str, key_header: str
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Limit a JSON endpoint's 401 answers, per client IP to the rate in `settings.<setting>`
    and per key named in the request header `key_header` (a META name) to `<key_setting>`.

    The endpoint always runs, so a request that authenticates is answered as usual however
    many failures came before it (`failure_hit`); a 401 past either limit becomes a 429 with
    the API's error body and Retry-After.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        scope = f"auth-failures:{view.__module__}.{view.__qualname__}"

        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            response = view(request, *args, **kwargs)
            if response.status_code != 401:
                return response
            wait = failure_hit(
                scope=scope,
                ip=client_ip(request),
                key=request.META.get(key_header, ""),
                ip_rate=getattr(settings, setting),
                key_rate=getattr(settings, key_setting),
            )
            return response if wait is None else failure_response(wait)

        return wrapped

    return decorator

"""Attempt limits per client IP, counted in the cache (Redis in production, shared by every web
process; local memory in the demo and tests).

A limit is written like allauth's: "20/10m" is 20 attempts per 10 minutes. Windows are fixed:
cheap (one INCR) and good enough against guessing, which needs millions of attempts.

Without the cache (Redis down) nothing is counted and every attempt goes through: a guesser
gains the minutes of the outage, while refusing everyone would stop the collectors' telemetry,
which the protocol acknowledges whatever happens to the cache (protocol/telemetry-v1.md).
"""

from __future__ import annotations

import functools
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


def is_limited(*, scope: str, ident: str, rate: str) -> bool:
    """Whether `ident` has used up its attempts in `scope`, without counting one."""
    parsed = Rate.parse(rate)
    try:
        count = int(cache.get(_key(scope, ident, parsed), 0))
    except CACHE_DOWN as error:
        log.warning("attempt limit %s not checked, the cache is down: %s", scope, error)
        return False
    return count >= parsed.limit


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


def auth_failures_limited(
    setting: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Limit a JSON endpoint's 401 answers per client IP to the rate in `settings.<setting>`.

    Every 401 counts; past the limit the endpoint is not called and the answer is 429 with the
    API's error body, until the window ends. Successful requests never count, so senders that
    authenticate keep working however busy they are.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        scope = f"auth-failures:{view.__module__}.{view.__qualname__}"

        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            from portal.api import error_body

            rate: str = getattr(settings, setting)
            ip = client_ip(request)
            if is_limited(scope=scope, ident=ip, rate=rate):
                response: HttpResponse = JsonResponse(
                    error_body(
                        "rate_limited",
                        "Too many failed authentication attempts from this address; "
                        "try again later.",
                    ),
                    status=429,
                )
                response["Retry-After"] = str(retry_after(rate=rate))
                return response
            response = view(request, *args, **kwargs)
            if response.status_code == 401:
                hit(scope=scope, ident=ip, rate=rate)
            return response

        return wrapped

    return decorator

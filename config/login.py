"""One lockout policy for every way to sign in: the login form, the admin's login and the API
token endpoint all authenticate through Django's ``authenticate()``, where django-axes counts
failures (in Postgres, so it holds without Redis) and refuses a locked-out client.

The policy (settings ``STEPWISE_LOGIN_*``): after ``MAX_FAILURES`` failed attempts on one
username, or ``MAX_FAILURES_PER_ADDRESS`` from one client address (many people may share one),
within ``WINDOW_SECONDS``, every attempt answers 429, even with the right password, until the
window has passed since the last failure. The client address is the one the trusted proxies
report (``STEPWISE_NUM_PROXIES``, as for the API's throttles), never a proxy's own address.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse


def client_ip(request: HttpRequest) -> str:
    """The client's address: with N trusted proxies, the N-th address of X-Forwarded-For from
    the right (what the outermost trusted proxy saw); REMOTE_ADDR without proxies.

    The same rule as DRF's throttles with NUM_PROXIES, so both count the same client.
    """
    meta = getattr(request, "META", {})
    remote = meta.get("REMOTE_ADDR", "") or ""
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
    if not addresses:
        return remote
    return addresses[-min(proxies, len(addresses))]


def failure_limit(_request: Any, _credentials: Any) -> int:
    return settings.STEPWISE_LOGIN_MAX_FAILURES


def cool_off(_request: Any = None) -> timedelta:
    return timedelta(seconds=settings.STEPWISE_LOGIN_WINDOW_SECONDS)


class LoginLockoutHandler(AxesDatabaseHandler):
    """Axes' database handler with a limit per username and a larger one per address.

    Axes compares one number with one limit; this reports the username's failures, or the
    username limit itself once the address has used up its own.
    """

    def get_failures(self, request: Any, credentials: dict | None = None) -> int:
        by_username, by_address = (
            attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        if by_address >= settings.STEPWISE_LOGIN_MAX_FAILURES_PER_ADDRESS:
            return max(by_username, settings.STEPWISE_LOGIN_MAX_FAILURES)
        return by_username

    def reset_user_attempts(self, request: Any, credentials: dict | None = None) -> int:
        # A successful sign-in clears that username's failures only: clearing the address's too
        # would let anyone with an account reset the count of a guesser sharing their address.
        count, _ = self.filter_user_attempts(request, credentials)[0].delete()
        return count


class LockoutBackend(AxesStandaloneBackend):
    """Axes' backend, except that an ``authenticate()`` without a request passes through.

    Every sign-in over the web (the form, the admin, the token endpoint) passes its request;
    only code in the process itself (the test client's ``login``, a shell) has none, and
    there is no client to count there.
    """

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


LOCKED_OUT_MESSAGE = "Too many failed sign-in attempts. Try again in a few minutes."


def locked_out(request: Any, _original: Any = None, _credentials: Any = None) -> HttpResponse:
    """The form's (and admin's) answer to a locked-out client."""
    response = HttpResponse(LOCKED_OUT_MESSAGE, status=429, content_type="text/plain")
    response["Retry-After"] = str(settings.STEPWISE_LOGIN_WINDOW_SECONDS)
    return response

"""Login forms (the site's and the admin's) with a cache-based limit on failed attempts."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator


def _keys(request: HttpRequest) -> list[str]:
    username = (request.POST.get("username") or "").strip().lower()
    address = request.META.get("REMOTE_ADDR", "")
    return [f"login-failures:user:{username}", f"login-failures:addr:{address}"]


def login_rate_limited(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """After too many failed POSTs per username or per client address, answer 429.

    Counting both keys stops guessing one password from many addresses and many passwords
    from one address; the window restarts with the first failure after it lapses.
    """

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        keys = _keys(request)
        limits = [
            settings.STEPWISE_LOGIN_MAX_FAILURES,
            settings.STEPWISE_LOGIN_MAX_FAILURES_PER_ADDRESS,
        ]
        counts = cache.get_many(keys)
        if any(counts.get(key, 0) >= limit for key, limit in zip(keys, limits, strict=True)):
            response = HttpResponse(
                "Too many failed sign-in attempts. Try again in a few minutes.",
                status=429,
                content_type="text/plain",
            )
            response["Retry-After"] = str(settings.STEPWISE_LOGIN_WINDOW_SECONDS)
            return response
        response = view(request, *args, **kwargs)
        if request.user.is_authenticated:
            cache.delete(keys[0])
        else:
            for key in keys:
                cache.add(key, 0, timeout=settings.STEPWISE_LOGIN_WINDOW_SECONDS)
                cache.incr(key)
        return response

    return wrapped


@method_decorator(login_rate_limited, name="dispatch")
class RateLimitedLoginView(auth_views.LoginView):
    """Django's LoginView behind the failed-attempt limit."""

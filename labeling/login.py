"""The browser login form, with a cache-based limit on failed attempts."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse


def _keys(request: HttpRequest) -> list[str]:
    username = (request.POST.get("username") or "").strip().lower()
    address = request.META.get("REMOTE_ADDR", "")
    return [f"login-failures:user:{username}", f"login-failures:addr:{address}"]


class RateLimitedLoginView(auth_views.LoginView):
    """Django's LoginView; after too many failures per username or address it answers 429.

    Counting both keys stops guessing one password from many addresses and many passwords
    from one address; the window restarts with the first failure after it lapses.
    """

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        keys = _keys(request)
        limit = settings.STEPWISE_LOGIN_MAX_FAILURES
        if any((cache.get(key) or 0) >= limit for key in keys):
            response = HttpResponse(
                "Too many failed sign-in attempts. Try again in a few minutes.",
                status=429,
                content_type="text/plain",
            )
            response["Retry-After"] = str(settings.STEPWISE_LOGIN_WINDOW_SECONDS)
            return response
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            cache.delete(keys[0])
        else:
            for key in keys:
                cache.add(key, 0, timeout=settings.STEPWISE_LOGIN_WINDOW_SECONDS)
                cache.incr(key)
        return response

"""The Redis cache, failing open: while Redis does not answer, each process keeps its own.

Throttle counters and other cached values are conveniences; labeling only needs Postgres. So a
cache call that cannot reach Redis is served from a per-process memory cache instead, one log
line says so (and one more when Redis answers again), and the next tries at Redis wait a few
seconds so an outage does not add a failed connection to every request. During an outage the
limits are therefore per process rather than shared, which errs on the side of serving.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("stepwise.cache")

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class FailOpenRedisCache(RedisCache):
    """Django's RedisCache with a local fallback while Redis is unreachable.

    ``OPTIONS["retry_after"]`` (seconds, default 5) is how long to stay on the local cache
    after a failure before trying Redis again; the other options go to redis-py.
    """

    def __init__(self, server: str, params: dict[str, Any]):
        options = dict(params.get("OPTIONS") or {})
        self.retry_after = float(options.pop("retry_after", 5.0))
        super().__init__(server, {**params, "OPTIONS": options})
        self._local = LocMemCache(f"stepwise-fallback-{id(self)}", {"OPTIONS": {}})
        self._down_until = 0.0
        self._down = False
        self._state_lock = threading.Lock()

    # -------------------------------------------------------------- the switch

    @property
    def using_fallback(self) -> bool:
        return self._down

    def _failed(self, exc: BaseException) -> None:
        with self._state_lock:
            self._down_until = time.monotonic() + self.retry_after
            if not self._down:
                self._down = True
                logger.warning(
                    "cache: Redis unreachable (%s); serving throttles and cached values from "
                    "this process's memory until it answers",
                    exc,
                )

    def _recovered(self) -> None:
        with self._state_lock:
            if self._down:
                self._down = False
                logger.warning("cache: Redis answers again; back on the shared cache")

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._down and time.monotonic() < self._down_until:
            return getattr(self._local, name)(*args, **kwargs)
        try:
            result = getattr(super(), name)(*args, **kwargs)
        except _UNREACHABLE as exc:
            self._failed(exc)
            return getattr(self._local, name)(*args, **kwargs)
        if self._down:
            self._recovered()
        return result

    def ping(self) -> bool:
        """True when Redis answers now (health checks); never raises."""
        try:
            self._cache.get_client(write=False).ping()
        except _UNREACHABLE as exc:
            self._failed(exc)
            return False
        self._recovered()
        return True

    # -------------------------------------------------------------- the cache API

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("add", key, value, timeout, version)

    def get(self, key, default=None, version=None):
        return self._call("get", key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", key, value, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("touch", key, timeout, version)

    def delete(self, key, version=None):
        return self._call("delete", key, version)

    def get_many(self, keys, version=None):
        return self._call("get_many", keys, version)

    def has_key(self, key, version=None):
        return self._call("has_key", key, version)

    def incr(self, key, delta=1, version=None):
        return self._call("incr", key, delta, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set_many", data, timeout, version)

    def delete_many(self, keys, version=None):
        return self._call("delete_many", keys, version)

    def clear(self):
        return self._call("clear")

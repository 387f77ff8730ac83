"""Helpers shared by the import/export benchmarks: a scratch database and child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def database_url(name: str) -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stepwise")
    return urlunsplit(urlsplit(base)._replace(path="/" + name))


def conninfo(url: str) -> str:
    # psycopg takes libpq URLs as they are; Django's "postgres://" scheme is one of them.
    return url.replace("postgres://", "postgresql://", 1)


def recreate_database(name: str) -> str:
    """Drop and create the scratch database ``name`` and migrate it; returns its URL."""
    url = database_url(name)
    maintenance = conninfo(database_url("postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        check=True,
    )
    return url


def run_child(args: list[str], url: str) -> dict:
    """Run ``python <args>`` on database ``url``; its last stdout line is a JSON report."""
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url, "DATABASE_CONN_MAX_AGE": "0"},
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(pid: int | None = None) -> float | None:
    """CPU time (user + system) of this process, or of process ``pid`` read from /proc (a
    Postgres backend, when the server runs on this machine); None when it cannot be read."""
    if pid is None:
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

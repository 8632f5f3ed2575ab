"""A throwaway PostgreSQL server for the log archive's tests (a pytest plugin: ``pytest_plugins``).

The tests start their own server rather than expect one: initdb into a temporary directory, listen on 127.0.0.1
and a free port only, socket in that directory, durability off for speed. PostgreSQL refuses to run as root, so
as root the server runs as the ``postgres`` user. If it cannot be installed or started the tests FAIL, never
skip: a skipped backend would pass CI untested.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from .harness import free_port

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "scripts" / "install-postgres.sh"
_schemas = itertools.count()


def _bin_dir() -> Path:
    """Where initdb and pg_ctl are, installing Debian's package first if they are missing."""
    done = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"PostgreSQL is not installed and {INSTALL.name} could not install it:\n{done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _run(args: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(_as_owner(args), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
        raise RuntimeError(f"PostgreSQL {what} failed ({done.returncode}): {done.stderr or done.stdout}\n{tail}")


@contextlib.contextmanager
def local_postgres() -> Iterator[str]:
    """A running server's DSN (database ``archive``, user ``postgres``, trust auth on loopback only), stopped and
    deleted on leaving; raises RuntimeError if it cannot be installed or started. Also used by bench/archive.py."""
    import psycopg  # here, so a missing driver fails these tests alone, with its own message

    bin_dir = _bin_dir()
    home = Path(tempfile.mkdtemp(prefix="tenx-archive-pg-"))
    data, log, port = home / "data", home / "server.log", free_port()
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
    try:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(home, owner.pw_uid, owner.pw_gid)
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-locale",
              "-E", "UTF8", "--no-sync"], "initdb")
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off -c synchronous_commit=off"
                   " -c full_page_writes=off -c max_connections=50")
        _run([*pg_ctl, "-l", str(log), "-w", "-t", "60", "-o", options, "start"], "start", log)
        base = f"postgresql://postgres@127.0.0.1:{port}"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE archive")
        yield f"{base}/archive"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_owner([*pg_ctl, "-m", "immediate", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """``local_postgres`` for the session; a failure to start fails the tests (never a skip)."""
    try:
        with local_postgres() as dsn:
            yield dsn
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def postgres_dsn(postgres_server: str) -> str:
    """A DSN whose tables land in a fresh schema, so every test starts from an empty archive."""
    import psycopg

    schema = f"test_{next(_schemas)}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{postgres_server}?options=-csearch_path%3D{schema}"

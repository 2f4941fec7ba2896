"""A real PostgreSQL server on loopback for the tests, from Debian's ``postgresql`` binaries.

``initdb`` and ``postgres`` refuse to run as root, so under root the server runs as the
``postgres`` user (created by Debian's package) in a folder it owns. Host connections need a
password (scram-sha-256), so tests can check credentials; the unix socket stays in the folder.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port

USER = "llmeval"
PASSWORD = "s3cret-Pa55word"


def server_bin() -> Path | None:
    """The folder of ``initdb``/``pg_ctl``: on PATH, else Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


class PostgresServer:
    """One throw-away cluster: ``start``, ``stop`` (``immediate`` kills it as a crash would), databases."""

    _names = itertools.count()

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="llmeval-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse root
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._command("mkdir", str(self.socket_dir))
        pwfile = self.root / "pw"
        self._command("sh", "-c", f"printf '%s\\n' '{PASSWORD}' > {pwfile}")
        self._command(str(bin_dir / "initdb"), "-D", str(self.data), "-U", USER, "-E", "UTF8", "--no-sync",
                      "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}")

    def _command(self, *args: str) -> str:
        done = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.socket_dir} -c fsync=off"
        self._command(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                      "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._command(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def stop_command(self, mode: str = "immediate") -> list[str]:
        """The command line that stops the server, for a scripted client to run mid-test."""
        return [*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]

    def running(self) -> bool:
        status = subprocess.run([*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "status"],
                                capture_output=True, timeout=30, check=False)
        return status.returncode == 0

    def uri(self, database: str = "postgres", *, password: str | None = PASSWORD, user: str = USER) -> str:
        secret = f":{urllib.parse.quote(password, safe='')}" if password is not None else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its URI (with the password)."""
        name = f"cache_{os.getpid()}_{next(self._names)}"
        self.sql(f"CREATE DATABASE {name}")
        return self.uri(name)

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.uri(database), autocommit=True) as conn:
            cursor = conn.execute(statement)  # type: ignore[arg-type]  # test statements are literals
            return cursor.fetchall() if cursor.description else []

    def remove(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> PostgresServer:
    """A started server, or a skip saying why there is none."""
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'pytest-llmeval[postgres]'")
    bin_dir = server_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or under /usr/lib/postgresql/*/bin; "
                    "apt-get install postgresql")
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except BaseException:
        print(server.log.read_text() if server.log.exists() else "no server log")
        server.remove()
        raise
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session (per xdist worker), stopped at the end."""
    server = start_server()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg_uri(pg_server: PostgresServer) -> str:
    """A fresh database on the session's server, for one test; its URI with the password."""
    if not pg_server.running():  # a test that stopped it and failed before restarting it
        pg_server.start()
    return pg_server.create_database()

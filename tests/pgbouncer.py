"""A real pgbouncer (Debian's package `pgbouncer`) in transaction mode in front
of a PostgreSQL, for the tests marked `pgbouncer` and for bench/soak.py.

It listens on a free port of 127.0.0.1 and serves every database of the
upstream server (`* =` in its [databases]), logging in there as the upstream
URL's user; clients connect as that user, without a password (auth_type
trust). As root it runs as the `postgres` user (else `nobody`): pgbouncer
refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from service.config import Config
from service.db import session_settings

MISSING = (
    "pgbouncer is not installed: `apt-get install pgbouncer` (Debian/Ubuntu), "
    "or set PGBOUNCER to its path"
)


def pgbouncer_binary() -> str | None:
    """PGBOUNCER, else pgbouncer on PATH or in /usr/sbin (not on a user's PATH)."""
    explicit = os.environ.get("PGBOUNCER")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    found = shutil.which("pgbouncer")
    if found:
        return found
    for candidate in ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_as(host: str) -> str | None:
    """The user to switch to (`-u`) when running as root: the owner of the
    upstream's Unix socket directory (an embedded server's is private to its
    user), else `postgres`, else `nobody`."""
    if os.geteuid() != 0:
        return None
    if host.startswith("/"):
        owner = pwd.getpwuid(os.stat(host).st_uid).pw_name
        if owner != "root":
            return owner
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("pgbouncer refuses to run as root and no postgres/nobody user exists")


class PgBouncer:
    """One pgbouncer process; `start()` (again after `kill()`) on the same port."""

    def __init__(
        self,
        upstream_url: str,
        *,
        pool_size: int = 4,
        max_client_conn: int = 1000,
        ignore_startup_parameters: Sequence[str] = (),
        query_wait_timeout: int = 10,
        binary: str | None = None,
    ) -> None:
        binary = binary or pgbouncer_binary()
        if binary is None:
            raise RuntimeError(MISSING)
        self.binary = binary
        upstream = conninfo_to_dict(upstream_url)
        self.user = str(upstream.get("user") or "postgres")
        self.port = _free_port()
        self.pool_size = pool_size
        self.dir = Path(tempfile.mkdtemp(prefix="pastebin-pgbouncer-"))
        self.dir.chmod(0o755)  # read by the user it switches to
        server = {
            "host": str(upstream.get("host") or "/var/run/postgresql"),
            "port": str(upstream.get("port") or "5432"),
            "user": self.user,
            "password": str(upstream.get("password") or ""),
        }
        # The auth_file's password is not checked (trust); the user must be listed.
        (self.dir / "userlist.txt").write_text(f'"{self.user}" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = {make_conninfo('', **{k: v for k, v in server.items() if v})}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {self.port}",
                    "unix_socket_dir =",
                    "auth_type = trust",
                    f"auth_file = {self.dir / 'userlist.txt'}",
                    f"admin_users = {self.user}",
                    "pool_mode = transaction",
                    f"default_pool_size = {pool_size}",
                    f"max_client_conn = {max_client_conn}",
                    f"ignore_startup_parameters = {','.join(ignore_startup_parameters)}",
                    # A client waiting for a server connection (the database
                    # down) gets an error after this many seconds, not 120.
                    f"query_wait_timeout = {query_wait_timeout}",
                    # Retry a failed login to the server after 1 s, not 15.
                    "server_login_retry = 1",
                    "",
                ]
            )
        )
        for path in self.dir.iterdir():
            path.chmod(0o644)
        self.host = str(server["host"])
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] = (self.dir / "pgbouncer.log").open("ab")

    def url(self, database_url: str) -> str:
        """`database_url`'s database, reached through this pgbouncer."""
        dbname = conninfo_to_dict(database_url).get("dbname") or self.user
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    @property
    def admin_url(self) -> str:
        """The admin console (`SHOW POOLS;` …): the virtual database `pgbouncer`."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/pgbouncer"

    def start(self, timeout: float = 10.0) -> None:
        cmd = [self.binary]
        user = _run_as(self.host)
        if user:
            cmd += ["-u", user]
        cmd.append(str(self.dir / "pgbouncer.ini"))
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited at start:\n{self.read_log()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    log = self.read_log()[-2000:]
                    raise RuntimeError(f"pgbouncer did not listen:\n{log}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: every client connection drops at once, nothing is flushed."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM (pgbouncer's immediate shutdown), then SIGKILL if it lingers."""
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def read_log(self) -> str:
        self._log.flush()
        return (self.dir / "pgbouncer.log").read_text(errors="replace")

    def close(self) -> None:
        self.stop()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def running_pgbouncer(upstream_url: str, **options: object) -> Iterator[PgBouncer]:
    """A started PgBouncer (see its options), stopped and cleaned up on exit."""
    bouncer = PgBouncer(upstream_url, **options)  # type: ignore[arg-type]
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.close()


def set_role_defaults(database_url: str, config: Config) -> None:
    """What README, Operations, tells operators to do behind a transaction-mode
    pooler: `config`'s timeouts and TimeZone as the role's defaults in the
    database of `database_url` (a direct URL), for connections opened after."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for name, value in session_settings(config):
            conn.execute(
                sql.SQL("ALTER ROLE CURRENT_USER IN DATABASE {} SET {} = {}").format(
                    sql.Identifier(conn.info.dbname), sql.Identifier(name), sql.Literal(value)
                )
            )

"""A private PostgreSQL server, started from the binaries of the ``pgserver`` package.

The server lives in ``<state_dir>/pgdata`` and listens only on a Unix socket. Every sluice
process that uses it registers itself in ``<state_dir>/clients/``; the last one to leave stops
the server cleanly (``pg_ctl stop -m fast``). A client that died without leaving (SIGKILL) is
recognised by its process start time and does not keep the server up forever.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from sluice.errors import ConfigError

log = logging.getLogger(__name__)

_SERVER_OPTIONS = (
    # Bulk loads write a lot of WAL at once; fewer forced checkpoints keep them fast.
    "-c max_wal_size=4GB",
    "-c shared_buffers=256MB",
    "-c listen_addresses=''",
)


class EmbeddedServer:
    """Start, share and stop the private server of one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.pgdata = state_dir / "pgdata"
        self.clients = state_dir / "clients"
        self._registered = False
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the embedded server is not started")
        return self._url

    def start(self) -> str:
        """Make sure the server runs and register this process as one of its clients."""
        pgserver = _import_pgserver()  # only needed without a database URL

        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            user = _system_user()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb(user)
            info = pgserver.utils.PostmasterInfo.read_from_pgdata(self.pgdata)
            if info is None or not info.is_running():
                self._pg_ctl_start(user)
                info = pgserver.utils.PostmasterInfo.read_from_pgdata(self.pgdata)
            if info is None or not info.is_running():
                raise ConfigError(
                    f"the embedded PostgreSQL in {self.pgdata} did not start; "
                    f"see {self.pgdata / 'log'}"
                )
            self._register()
            self._url = str(info.get_uri(database="postgres"))
        return self._url

    def stop(self) -> None:
        """Unregister this process; stop the server if no live client remains."""
        if not self._registered:
            return
        pgserver = _import_pgserver()

        with self._locked():
            (self.clients / str(os.getpid())).unlink(missing_ok=True)
            self._registered = False
            if self._live_clients():
                return
            info = pgserver.utils.PostmasterInfo.read_from_pgdata(self.pgdata)
            if info is not None and info.is_running():
                log.info("stopping the embedded PostgreSQL in %s", self.pgdata)
                _command("pg_ctl")(
                    ["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=_system_user()
                )

    def _initdb(self, user: str | None) -> None:
        log.info("creating the embedded PostgreSQL in %s", self.pgdata)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if user is not None:
            _grant(self.pgdata, user)
        _command("initdb")(
            ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
            pgdata=self.pgdata,
            user=user,
        )

    def _pg_ctl_start(self, user: str | None) -> None:
        pgserver = _import_pgserver()

        if user is not None:
            # The server's user must reach its folder at every start, not only the first: a
            # parent may have become private since (a temporary root made private again).
            pgserver.utils.ensure_prefix_permissions(self.pgdata)
        socket_dir = pgserver.utils.find_suitable_socket_dir(self.pgdata, self.state_dir / "run")
        if user is not None and socket_dir != self.pgdata:
            socket_dir.chmod(0o777)
        options = " ".join((*_SERVER_OPTIONS, f"-k {socket_dir}"))
        log.info("starting the embedded PostgreSQL in %s", self.pgdata)
        try:
            _command("pg_ctl")(
                ["-w", "-o", options, "-l", str(self.pgdata / "log"), "start"],
                pgdata=self.pgdata,
                user=user,
                timeout=60,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(
                f"the embedded PostgreSQL in {self.pgdata} did not start ({exc}); "
                f"see {self.pgdata / 'log'}"
            ) from exc

    def _register(self) -> None:
        self.clients.mkdir(exist_ok=True)
        me = psutil.Process()
        (self.clients / str(me.pid)).write_text(str(me.create_time()))
        self._registered = True

    def _live_clients(self) -> list[int]:
        alive = []
        for entry in self.clients.iterdir():
            pid = int(entry.name)
            try:
                started = float(entry.read_text() or 0)
                if psutil.Process(pid).create_time() == started:
                    alive.append(pid)
                    continue
            except (psutil.NoSuchProcess, ValueError, OSError):
                pass
            entry.unlink(missing_ok=True)
        return alive

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.state_dir / "embedded.lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _import_pgserver() -> Any:
    """pgserver, imported quietly: at import it resolves a runtime directory and warns when
    XDG_RUNTIME_DIR is unset, which is irrelevant here (sluice picks its own socket folder)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    return pgserver


def _command(name: str) -> Callable[..., str]:
    """One of the PostgreSQL programs pgserver ships (initdb, pg_ctl...), as a function."""
    command: Callable[..., str] = getattr(_import_pgserver(), name)
    return command


def _system_user() -> str | None:
    """PostgreSQL refuses to run as root; as root, run it as a dedicated system user."""
    if os.geteuid() != 0:
        return None
    _import_pgserver().utils.ensure_user_exists("pgserver")
    return "pgserver"


def _grant(pgdata: Path, user: str) -> None:
    import pwd

    pgserver = _import_pgserver()
    bin_path = pgserver._commands.POSTGRES_BIN_PATH
    pgserver.utils.ensure_prefix_permissions(pgdata)
    pgserver.utils.ensure_prefix_permissions(bin_path)
    read, execute = 0o044, 0o011
    pgserver.utils.ensure_folder_permissions(bin_path, read | execute)
    pgserver.utils.ensure_folder_permissions(bin_path.parent / "lib", read)
    entry = pwd.getpwnam(user)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)

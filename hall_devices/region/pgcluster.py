"""A PostgreSQL cluster of the project's own (demo, tests, a region without a DBA's server).

Debian's binaries (package ``postgresql``) from ``/usr/lib/postgresql/<major>/bin``. ``initdb`` refuses
to run as root, so as root the cluster is owned and run by an unprivileged account (``nobody`` unless
told). It listens on 127.0.0.1 and a socket in its own folder only; local connections are trusted
(the region's machine is the only client). Never the machine's own server on port 5432.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path


class ClusterError(Exception):
    pass


def pg_bin() -> Path:
    """The newest installed PostgreSQL server's bin folder."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise ClusterError("PostgreSQL is not installed (apt-get install postgresql)")
    return Path(found[-1]).parent


class PgCluster:
    """``data_dir`` holds the cluster, its socket and its log; ``url`` connects as ``user``."""

    def __init__(self, data_dir: Path, port: int, run_as: str = "nobody", user: str = "hall") -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.user = user
        self._run_as = run_as if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        command = [str(pg_bin() / argv[0]), *argv[1:]]
        if self._run_as is not None:
            command = ["runuser", "-u", self._run_as, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd="/", check=False)
        if done.returncode != 0:
            raise ClusterError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[-1500:]}")

    def init(self) -> None:
        """Create the cluster unless it exists."""
        pgdata = self.data_dir / "pgdata"
        if (pgdata / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is not None:
            account = pwd.getpwnam(self._run_as)
            os.chown(self.data_dir, account.pw_uid, account.pw_gid)
        self.data_dir.chmod(0o700)
        self._run("initdb", "-D", str(pgdata), "-U", self.user, "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir / "pgdata"), "-l", str(self.data_dir / "postgres.log"),
                  "-w", "-t", "30", "-o",
                  f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=on", "start")

    def stop(self) -> None:
        if (self.data_dir / "pgdata" / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir / "pgdata"), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

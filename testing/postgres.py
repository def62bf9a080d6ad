"""A PostgreSQL cluster of the tests' own, for tests that restart or break their database: the
machine's server binaries (so its extensions too: zhparser and pgvector from
`make pg-extensions`), initdb into a temporary folder, a free port on 127.0.0.1, trust auth for
user postgres. Nothing else on the machine shares it, and it is removed after.

`without` leaves extensions out, as a server that never had them (Immich's stock image has no
zhparser): PostgreSQL finds its library and share folders relative to its own executable, so
the cluster runs a copy of the binaries beside links to every other file."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from testing.servers import free_port


def _bindir() -> Path | None:
    """The newest server's binaries (Debian's layout), else pg_ctl's folder on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def missing() -> str | None:
    if _bindir() is None:
        return "no PostgreSQL server binaries (pg_ctl): `apt-get install postgresql`"
    return None


@dataclass
class Cluster:
    port: int
    data: Path
    log: Path
    _bindir: Path

    def tool(self, tool: str, *args: str) -> None:
        """Run one of the server's tools (pg_ctl, initdb) on this cluster, as user postgres."""
        command = [str(self._bindir / tool), *args]
        if os.geteuid() == 0:  # the server refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr}\n{self.log_text()[-2000:]}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data.parent}"
        self.tool("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def restart(self) -> None:
        """A fast shutdown and start, as a server restart: every connection is cut."""
        # The log file again: without it the server writes to (and holds open) this call's pipe.
        self.tool("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "restart")

    def stop(self) -> None:
        self.tool("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


def _pg_config(bindir: Path, what: str) -> Path:
    done = subprocess.run([bindir / "pg_config", f"--{what}"], capture_output=True, text=True, check=True)
    return Path(done.stdout.strip())


def _installation_without(bindir: Path, extensions: tuple[str, ...], root: Path) -> Path:
    """A copy of the server's installation under `root` that lacks `extensions`; its bindir."""
    folders = {what: _pg_config(bindir, what) for what in ("bindir", "pkglibdir", "sharedir")}
    prefix = Path(os.path.commonpath(list(folders.values())))

    def left_out(name: str) -> bool:
        return any(name == ext or name.startswith((f"{ext}.", f"{ext}--")) for ext in extensions)

    def mirror(source: Path, target: Path, copy: bool) -> None:
        target.mkdir(parents=True, exist_ok=True)
        for entry in source.iterdir():
            if left_out(entry.name):
                continue
            if entry.name == "extension" and entry.is_dir():
                mirror(entry, target / entry.name, copy=False)
            elif copy:  # the executables themselves: PostgreSQL resolves links to find its folders
                shutil.copy2(entry, target / entry.name)
            else:
                (target / entry.name).symlink_to(entry)

    for what, folder in folders.items():
        mirror(folder, root / folder.relative_to(prefix), copy=what == "bindir")
    return root / folders["bindir"].relative_to(prefix)


@contextlib.contextmanager
def private_cluster(without: tuple[str, ...] = ()) -> Iterator[Cluster]:
    bindir = _bindir()
    if bindir is None:
        raise RuntimeError(missing())
    # Not under pytest's folder: the postgres user must reach it, and pytest's is private to root.
    folder = Path(tempfile.mkdtemp(prefix="aio-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    if without:
        bindir = _installation_without(bindir, without, folder / "installation")
    cluster = Cluster(free_port(), folder / "data", folder / "server.log", bindir)
    try:
        cluster.tool("initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

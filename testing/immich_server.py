"""A real Immich server for tests: built once from Immich's release sources, started per test
session with a database, redis, media folder and ports of its own, then driven through its API.

- The sources: `IMMICH_SOURCES`, else the workspace's `shared/vendor/immich` beside the checkout,
  else `.immich-sources` (what `scripts/fetch-immich.sh VERSION` writes for users online).
- `IMMICH_BUILD_ROOT` (default `/opt/immich`) caches each release's build in `ROOT/VERSION`,
  outside the checkout; `scripts/build-immich.sh` makes it, and a build that is current takes
  seconds.
Immich runs in a process group of its own (it starts children) and is stopped through it.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from testing.servers import free_port
from testing.waiting import eventually

REPO = Path(__file__).resolve().parent.parent
RELEASES = ("3.1.0", "2.7.5")
PASSWORD = "immich-e2e-password"
START_TIMEOUT = 180.0


def sources() -> Path:
    if os.environ.get("IMMICH_SOURCES"):
        return Path(os.environ["IMMICH_SOURCES"])
    shared = REPO.parent / "shared" / "vendor" / "immich"
    return shared if shared.is_dir() else REPO / ".immich-sources"


def build_root() -> Path:
    return Path(os.environ.get("IMMICH_BUILD_ROOT") or "/opt/immich")


def missing(version: str) -> str | None:
    """Why a real Immich `version` cannot run here, or None."""
    if not (sources() / f"immich-v{version}.tar.gz").is_file():
        return (
            f"Immich {version}'s release sources are not in {sources()}: run `scripts/fetch-immich.sh {version}` "
            "online, or set IMMICH_SOURCES to a folder with the release archives"
        )
    for tool in ("psql", "pg_config"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: a local PostgreSQL server with trust auth is needed"
    return None


def build(version: str) -> Path:
    """Build (or find current) Immich `version`; its prefix."""
    prefix = build_root() / version
    done = subprocess.run(
        [str(REPO / "scripts" / "build-immich.sh"), version, str(prefix)],
        env={**os.environ, "IMMICH_SOURCES": str(sources())},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building Immich {version} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return prefix


def psql(sql: str, database: str = "postgres", port: int = 5432) -> str:
    server = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database]
    done = subprocess.run(
        ["psql", *server, "-v", "ON_ERROR_STOP=1", "-tAc", sql],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"psql failed: {done.stderr}")
    return done.stdout.strip()


@dataclass
class User:
    id: str
    email: str
    api_key: str
    access_token: str
    is_admin: bool = False

    @property
    def key_headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key}


@dataclass(kw_only=True)
class ImmichApi:
    """A client of a running Immich's API (users, settings, uploads, jobs), wherever it runs."""

    version: str
    url: str
    admin: User | None = None
    users: dict[str, User] = field(default_factory=dict)

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def log_tail(self, chars: int = 4000) -> str:
        """The end of Immich's log, for failure messages."""
        return ""

    def wait_until(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll `condition` until it is truthy (returned); a timeout names `what` and Immich's log."""
        return eventually(condition, timeout, what, detail=lambda: f"Immich's log:\n{self.log_tail()}")

    # -- API ----------------------------------------------------------------------------------
    def api(self, method: str, path: str, user: User | None = None, **kwargs: Any) -> httpx.Response:
        headers = {**(user.key_headers if user else {}), **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kwargs)

    def ok(self, method: str, path: str, user: User | None = None, **kwargs: Any) -> Any:
        response = self.api(method, path, user, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def sign_up_admin(self) -> User:
        email = "admin@e2e.test"
        self.ok("POST", "/api/auth/admin-sign-up", json={"email": email, "password": PASSWORD, "name": "Admin"})
        self.admin = self._login(email, is_admin=True)
        return self.admin

    def create_user(self, name: str) -> User:
        email = f"{name}@e2e.test"
        self.ok("POST", "/api/admin/users", self.admin, json={"email": email, "password": PASSWORD, "name": name})
        self.users[name] = user = self._login(email)
        return user

    def _login(self, email: str, is_admin: bool = False) -> User:
        login = self.ok("POST", "/api/auth/login", json={"email": email, "password": PASSWORD})
        token = login["accessToken"]
        key = self.ok(
            "POST",
            "/api/api-keys",
            headers={"authorization": f"Bearer {token}"},
            json={"name": "e2e", "permissions": ["all"]},
        )
        return User(login["userId"], email, key["secret"], token, is_admin)

    def configure(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Read the system config, let `change` edit it, send the whole object back."""
        config = self.ok("GET", "/api/system-config", self.admin)
        change(config)
        updated: dict[str, Any] = self.ok("PUT", "/api/system-config", self.admin, json=config)
        return updated

    def upload(self, user: User, data: bytes, name: str = "photo.jpg", taken: datetime | None = None) -> str:
        when = (taken or datetime.now(timezone.utc)).isoformat()
        fields = {"fileCreatedAt": when, "fileModifiedAt": when}
        if self.major < 3:  # 3.x dropped these; 2.x requires them
            fields |= {"deviceAssetId": f"{name}-{uuid.uuid4()}", "deviceId": "e2e"}
        answer = self.ok(
            "POST", "/api/assets", user, data=fields, files={"assetData": (name, io.BytesIO(data), "image/jpeg")}
        )
        return str(answer["id"])

    def queues(self) -> dict[str, dict[str, Any]]:
        queues: dict[str, dict[str, Any]] = self.ok("GET", "/api/jobs", self.admin)
        return queues

    def idle(self) -> bool:
        return all(q["jobCounts"]["active"] == 0 and q["jobCounts"]["waiting"] == 0 for q in self.queues().values())

    def wait_idle(self, timeout: float = 120) -> None:
        # Twice in a row: a finished job queues its follow-ups a moment after it ends.
        def settled() -> bool:
            if not self.idle():
                return False
            time.sleep(0.5)
            return self.idle()

        self.wait_until(settled, timeout, "Immich's queues are idle")

    def start_queue(self, queue: str, force: bool = False) -> httpx.Response:
        return self.api("PUT", f"/api/jobs/{queue}", self.admin, json={"command": "start", "force": force})


@dataclass(kw_only=True)
class ImmichServer(ImmichApi):
    """Immich started here as a process of its own, on a database, redis and media of its own."""

    prefix: Path
    database: str
    db_port: int
    media: Path
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    # Times Immich exited on its own and was started again (see `_supervise`).
    restarts: int = 0
    _stopping: bool = False
    _supervisor: threading.Thread | None = None

    # -- process -------------------------------------------------------------------------------
    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(self.prefix / "node" / "bin" / "node"), "dist/main.js"],
            cwd=self.prefix / "src" / "server",
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.wait_until(self._pong, START_TIMEOUT, "Immich answered /api/server/ping")
        if self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise, daemon=True)
            self._supervisor.start()

    def _supervise(self) -> None:
        """Start Immich again when it exits on its own, as its container's restart policy
        (`restart: always` in Immich's compose file) does: 2.7.5's API worker can exit when its
        database connection breaks in the middle of a write."""
        while self.process is not None:
            code = self.process.wait()
            if self._stopping:
                return
            self.restarts += 1
            with self.log_path.open("a") as log:
                log.write(f"\n[test harness] Immich exited ({code}); started again, as a restart policy does\n")
            self.start()

    def stop(self) -> None:
        self._stopping = True
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def restart(self) -> None:
        """Stop Immich and start it again (supervised again), as `docker compose restart` does."""
        self.stop()
        self._stopping, self._supervisor = False, None
        self.start()

    def _pong(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"Immich {self.version} exited ({self.process.returncode}):\n{self.log_tail()}")
        try:
            return httpx.get(f"{self.url}/api/server/ping", timeout=2).json() == {"res": "pong"}
        except (httpx.TransportError, ValueError):
            return False

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@contextlib.contextmanager
def immich_server(
    version: str,
    work: Path,
    ml_url: str,
    before_start: Callable[[ImmichServer], None] = lambda server: None,
    db_port: int = 5432,
    restored: tuple[str, Path] | None = None,
) -> Iterator[ImmichServer]:
    """A started Immich `version` with an admin; its database (on the PostgreSQL at 127.0.0.1:
    `db_port`), redis and media are dropped after. `before_start` runs once its URL and (empty)
    database exist, as services started beside it do. `restored`: a database restored from a
    backup and the media folder it belongs to, used as they are (their admin included)."""
    prefix = build(version)
    redis_port, port = free_port(), free_port()
    if restored is None:
        database = f"immich_e2e_{version.replace('.', '_')}_{uuid.uuid4().hex[:8]}"
        psql(f'CREATE DATABASE "{database}"', port=db_port)
        media = work / "media"
    else:
        database, media = restored
    media.mkdir(parents=True, exist_ok=True)
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "DB_URL": f"postgres://postgres@127.0.0.1:{db_port}/{database}",
        "DB_VECTOR_EXTENSION": "pgvector",
        "REDIS_HOSTNAME": "127.0.0.1",
        "REDIS_PORT": str(redis_port),
        "IMMICH_HOST": "127.0.0.1",
        "IMMICH_PORT": str(port),
        "IMMICH_MEDIA_LOCATION": str(media),
        "IMMICH_BUILD_DATA": str(prefix / "build"),
        "IMMICH_MACHINE_LEARNING_URL": ml_url,
        "NODE_ENV": "production",
        "IMMICH_LOG_LEVEL": "debug",
        "NO_COLOR": "1",
    }
    server = ImmichServer(
        version=version,
        url=f"http://127.0.0.1:{port}",
        prefix=prefix,
        database=database,
        db_port=db_port,
        media=media,
        log_path=work / "immich.log",
        env=env,
    )
    try:
        before_start(server)
        server.start()
        if restored is None:
            server.sign_up_admin()
        yield server
    finally:
        server.stop()
        redis.terminate()
        redis.wait(10)
        psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', port=db_port)

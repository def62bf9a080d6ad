"""Real servers on 127.0.0.1: an ASGI app in a thread (uvicorn), or a module in its own process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve(app: Any, port: int | None = None) -> Iterator[str]:
    """Run `app` on a real uvicorn server on 127.0.0.1 (on `port`, or a free one); yields its URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def server_process(
    module: str, env: dict[str, str], port_setting: str, python: str = sys.executable
) -> Iterator[tuple[str, int]]:
    """Run `python -m module` (with `python`) and `env` on a free port until its /ping answers;
    yields (URL, pid)."""
    port = free_port()
    process = subprocess.Popen(
        [python, "-m", module],
        env={**os.environ, **env, port_setting: str(port), "LOG_LEVEL": env.get("LOG_LEVEL", "WARNING")},
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    _until_pong(process, url, 120, lambda: f"{module} did not start")
    try:
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)


def _until_pong(process: subprocess.Popen[bytes], url: str, timeout: float, failure: Callable[[], str]) -> None:
    """Wait until `url`/ping answers; kill `process` and raise `failure()` (read then: a log as it
    is at the failure) if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(failure())
        time.sleep(0.1)


class ServiceProcess:
    """`python -m module` on a port of its own that stays the same across restarts, so a test
    can kill it and start it again where its clients expect it; its output goes to `log`."""

    def __init__(self, module: str, env: dict[str, str], port_setting: str, log: Path) -> None:
        self.module = module
        self.port = free_port()
        self.env = {**os.environ, **env, port_setting: str(self.port)}
        self.log = log
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", self.module], env=self.env, stdout=out, stderr=out)
        _until_pong(self.process, self.url, timeout, lambda: f"{self.module} did not start:\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as a crash or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

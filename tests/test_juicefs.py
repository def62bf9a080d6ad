"""Immich's library on a real JuiceFS mount (S3 data in a local moto server, metadata in
PostgreSQL): the file operations Immich performs, a remount, and a mount killed mid-write."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from testing.juicefs import Volume, juicefs_volume, missing, s3_server

pytestmark = pytest.mark.skipif(missing() is not None, reason=f"no JuiceFS mount here: {missing()}")

USER = str(uuid.uuid4())


@pytest.fixture(scope="module")
def s3_url():
    with s3_server() as url:
        yield url


@pytest.fixture
def volume(tmp_path, s3_url):
    with juicefs_volume(tmp_path, s3_url) as volume:
        yield volume


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(path: Path, data: bytes) -> None:
    """As Immich writes a file: create the folders, write, fsync, close."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def test_immichs_file_operations_survive_a_remount(volume: Volume):
    volume.mount()
    root = volume.mount_point
    original = os.urandom(5 * 1024 * 1024 + 123)  # more than one 4 MiB block
    asset = str(uuid.uuid4())
    upload = root / "upload" / USER / asset[:2] / asset[2:4] / f"{asset}.jpg"
    write(upload, original)
    thumbs = root / "thumbs" / USER / asset[:2] / asset[2:4]
    preview, thumbnail = os.urandom(300_000), os.urandom(20_000)
    write(thumbs / f"{asset}-preview.jpeg", preview)
    write(thumbs / f"{asset}-thumbnail.webp", thumbnail)
    # The upload moves into the library (storage template), atomically.
    library = root / "library" / USER / "2026" / "2026-12-01" / "IMG_0001.jpg"
    library.parent.mkdir(parents=True)
    os.rename(upload, library)
    assert not upload.exists()
    assert digest(library) == hashlib.sha256(original).hexdigest()
    assert (thumbs / f"{asset}-preview.jpeg").read_bytes() == preview
    (thumbs / f"{asset}-thumbnail.webp").unlink()
    chunks = [key for key in volume.objects() if "/chunks/" in key]
    assert chunks, "the data went to the bucket"

    volume.umount()
    volume.mount()
    assert digest(library) == hashlib.sha256(original).hexdigest()
    assert (thumbs / f"{asset}-preview.jpeg").read_bytes() == preview
    assert not (thumbs / f"{asset}-thumbnail.webp").exists()
    assert sorted(p.name for p in (root / "upload" / USER / asset[:2] / asset[2:4]).iterdir()) == []
    # Read through a fresh, empty local cache: every byte comes from the bucket.
    volume.umount()
    volume.mount(cache_dir=volume.cache_dir.parent / "cold-cache")
    assert digest(library) == hashlib.sha256(original).hexdigest()


WRITER = """
import hashlib, json, os, sys
root, journal = sys.argv[1], sys.argv[2]
with open(journal, "a") as done:
    for i in range(10_000):
        data = os.urandom(64 * 1024 + i)
        path = os.path.join(root, "library", f"{i // 100:03d}", f"{i:05d}.jpg")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        done.write(json.dumps([path, hashlib.sha256(data).hexdigest()]) + "\\n")
        done.flush()
        os.fsync(done.fileno())
"""


def test_every_file_whose_write_returned_survives_a_killed_mount(volume: Volume, tmp_path):
    journal = tmp_path / "written.jsonl"
    with volume.mounted_in_foreground() as mount:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(volume.mount_point), str(journal)], stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while not journal.exists() or len(journal.read_text().splitlines()) < 30:
            assert time.monotonic() < deadline and writer.poll() is None, "the writer made no progress"
            time.sleep(0.05)
        # In the middle of a batch of writes: juicefs runs the mount in a child of its supervisor;
        # the supervisor goes first, so nothing restarts the child.
        children = psutil.Process(mount.pid).children(recursive=True)
        for process in [psutil.Process(mount.pid), *children]:
            process.send_signal(signal.SIGKILL)
        mount.wait(timeout=10)
        writer.wait(timeout=60)
    assert writer.returncode != 0  # it was cut off, not finished
    volume.umount()
    written = [json.loads(line) for line in journal.read_text().splitlines()]
    assert len(written) >= 30

    volume.mount()
    for path, expected in written:
        assert digest(Path(path)) == expected, path

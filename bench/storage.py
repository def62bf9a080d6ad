"""Immich's library on JuiceFS against local disk, in one run: write and read throughput of
originals, and the time to the first byte of a preview (what a timeline scroll waits for), cold
(a fresh mount with an empty local cache: every byte from the bucket; for the local disk, an
emptied page cache) and warm (JuiceFS's local cache; the page cache). Figures are ratios to the
local disk of the same machine.

The bucket is moto's S3 server on this machine, so network latency to a real bucket is not in
these figures: they show what JuiceFS itself costs, and that the local cache removes it.
Run: `.venv/bin/python -m bench.storage` (as root, with FUSE).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from testing.juicefs import Volume, juicefs_volume, missing, s3_server

ORIGINAL_MB = 256
BLOCK = 4 * 1024 * 1024
PREVIEWS = 200
PREVIEW_BYTES = 150_000


def write_original(path: Path) -> float:
    """MB/s writing one large original in 4 MiB writes, fsynced as Immich's upload is."""
    block = os.urandom(BLOCK)
    started = time.perf_counter()
    with open(path, "wb") as file:
        for _ in range(ORIGINAL_MB * 1024 * 1024 // BLOCK):
            file.write(block)
        file.flush()
        os.fsync(file.fileno())
    return ORIGINAL_MB / (time.perf_counter() - started)


def read_original(path: Path) -> float:
    started = time.perf_counter()
    with open(path, "rb") as file:
        while file.read(BLOCK):
            pass
    return ORIGINAL_MB / (time.perf_counter() - started)


def write_previews(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(PREVIEWS):
        (folder / f"{i:04d}-preview.jpeg").write_bytes(os.urandom(PREVIEW_BYTES))


def first_bytes(folder: Path) -> list[float]:
    """Milliseconds from open to the first 4 KiB of each preview."""
    times = []
    for path in sorted(folder.iterdir()):
        started = time.perf_counter()
        with open(path, "rb") as file:
            file.read(4096)
        times.append((time.perf_counter() - started) * 1000)
    return times


def drop_page_cache() -> None:
    """Local disk, cold: the kernel's page cache emptied (root only; else the figures are warm)."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        print("note: the page cache could not be dropped: local disk reads are warm")


def p(times: list[float], q: float) -> float:
    return sorted(times)[min(len(times) - 1, int(q * len(times)))]


def measure(root: Path, remount: Callable[[], None]) -> dict[str, float]:
    """Write, then read after `remount` (cold for JuiceFS), then read again (warm)."""
    original = root / "library" / "original.bin"
    original.parent.mkdir(parents=True, exist_ok=True)
    figures = {"write MB/s": write_original(original)}
    write_previews(root / "thumbs")
    remount()
    figures["read MB/s, cold"] = read_original(original)
    cold = first_bytes(root / "thumbs")
    figures["read MB/s, warm"] = read_original(original)
    warm = first_bytes(root / "thumbs")
    figures |= {
        "preview first byte p50 ms, cold": statistics.median(cold),
        "preview first byte p95 ms, cold": p(cold, 0.95),
        "preview first byte p50 ms, warm": statistics.median(warm),
        "preview first byte p95 ms, warm": p(warm, 0.95),
    }
    return figures


def main() -> None:
    if reason := missing():
        raise SystemExit(f"cannot mount JuiceFS here: {reason}")
    with tempfile.TemporaryDirectory() as work, s3_server() as s3_url:
        local = measure(Path(work) / "local", drop_page_cache)
        with juicefs_volume(Path(work) / "jfs", s3_url) as volume:
            volume.mount()
            caches = iter(range(1, 100))

            def cold_remount(volume: Volume = volume) -> None:
                volume.umount()
                volume.mount(cache_dir=Path(work) / f"cache-{next(caches)}")  # an empty local cache

            juicefs = measure(volume.mount_point, cold_remount)
    print(f"{'':36} {'local disk':>11} {'JuiceFS':>9} {'ratio':>7}")
    for name, value in local.items():
        print(f"{name:36} {value:11.1f} {juicefs[name]:9.1f} {juicefs[name] / value:7.2f}")


if __name__ == "__main__":
    main()

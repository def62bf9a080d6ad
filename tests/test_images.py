"""The images users build, built and run on a real container engine and checked the way an
operator would: the image's own HEALTHCHECK passes, /ping, OCR through the gateway container to the
AI container, zhparser splitting words in the database container with the init SQL applied, logs
JSON lines from the first, nothing running as root. Each container is removed after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testing import containers as c
from testing.ml import OCR_ENTRIES, immich_request

pytestmark = pytest.mark.skipif(bool(reason := c.missing()), reason=str(reason))

REPO = c.REPO
KEY = "image-test-key"
GATEWAY, AI, DATABASE = c.GATEWAY, c.AI, c.DATABASE


@pytest.fixture(scope="module")
def net() -> Iterator[str]:
    with c.network() as name:
        yield name


@pytest.fixture(scope="module")
def images() -> None:
    from testing.standin_images import immich_postgres

    c.build_ours(REPO, immich_postgres())


@pytest.fixture(scope="module")
def ai(images: None, net: str) -> Iterator[c.Container]:
    with c.running(AI, f"aio-ai-{uuid.uuid4().hex[:6]}", net=net, env={"API_AUTH_KEY": KEY}, publish=(8060,)) as box:
        box.wait_healthy(180)
        yield box


@pytest.fixture(scope="module")
def gateway(images: None, net: str, ai: c.Container) -> Iterator[c.Container]:
    env = {"MT_PHOTOS_API": f"http://{ai.name}:8060", "MT_PHOTOS_API_KEY": KEY, "DB_HOSTNAME": "nowhere.invalid"}
    with c.running(GATEWAY, f"aio-gateway-{uuid.uuid4().hex[:6]}", net=net, env=env, publish=(8080,)) as box:
        box.wait_healthy(120)
        yield box


@pytest.fixture(scope="module")
def database(images: None, net: str) -> Iterator[c.Container]:
    env = {
        "POSTGRES_PASSWORD": "image-test",
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "immich",
        "POSTGRES_INITDB_ARGS": "--data-checksums",
    }
    with c.running(DATABASE, f"aio-db-{uuid.uuid4().hex[:6]}", net=net, env=env) as box:
        box.wait_healthy(120)
        yield box


def test_build_context_is_what_the_dockerfiles_copy(tmp_path: Path) -> None:
    """The engine is sent the project's sources, never a virtual environment or the git history."""
    probe = tmp_path / "Containerfile"
    probe.write_text("FROM docker.io/library/debian:bookworm-slim\nCOPY . /context\nRUN du -sk /context\n")
    c.build("localhost/aio-test/context:ci", probe, REPO)
    listing = c.engine("run", "--rm", "localhost/aio-test/context:ci", "sh", "-c", "ls -A /context; du -sk /context")
    entries = listing.stdout.split()
    size_kib = int(entries[-2])
    assert {".venv", ".venv-cpu", ".git", "tests", "bench", "node_modules"}.isdisjoint(entries), entries
    assert {"pyproject.toml", "README.md", "aio_common", "gateway", "mt_photos_ai", "db", "third_party"} <= set(entries)
    assert size_kib < 20_000, f"the build context is {size_kib} KiB"


@pytest.mark.parametrize("image", [GATEWAY, AI])
def test_our_images_run_as_their_own_user_with_a_healthcheck(images: None, image: str) -> None:
    config = c.image_config(image)
    assert config["User"] == "10001"
    assert "/ping" in str(config["Healthcheck"])


def test_ai_and_gateway_containers(ai: c.Container, gateway: c.Container) -> None:
    ai_url, gateway_url = (f"http://127.0.0.1:{box.host_port(port)}" for box, port in ((ai, 8060), (gateway, 8080)))
    assert httpx.get(f"{gateway_url}/ping", timeout=10).text == "pong"
    assert httpx.get(f"{ai_url}/ping", timeout=10).text == "pong"

    # OCR as Immich asks for it: gateway container -> AI container, by the network's names.
    image = (REPO / "docs" / "examples" / "invoice.jpg").read_bytes()
    answer = httpx.post(f"{gateway_url}/predict", timeout=120, **immich_request(OCR_ENTRIES, image=image))
    assert answer.status_code == 200, answer.text
    assert any("发票" in line for line in answer.json()["ocr"]["text"]), answer.json()

    # The key is checked in the container too.
    refused = httpx.post(f"{ai_url}/ocr", headers={"api-key": "wrong"}, files={"file": image}, timeout=30)
    assert refused.status_code == 401, refused.text

    for box in (ai, gateway):
        assert box.healthcheck_passes()
        assert box.process_users() == {"10001"}, box.name
        stdout, stderr = box.logs()
        assert stdout + stderr, f"{box.name} logged nothing"
        assert c.not_json_lines(stdout) == [] and c.not_json_lines(stderr) == [], box.name


def test_database_container_splits_chinese_words(database: c.Container) -> None:
    def sql(query: str, db: str = "zhparser") -> str:
        done = database.exec("psql", "-U", "postgres", "-d", db, "-tAc", query)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    # zhparser lives in a database of its own: Immich's holds nothing a backup could not restore.
    assert sql("SELECT extname FROM pg_extension WHERE extname = 'zhparser'") == "zhparser"
    assert sql("SELECT count(*) FROM pg_extension WHERE extname = 'zhparser'", db="immich") == "0"
    lexemes = sql("SELECT array_to_string(tsvector_to_array(to_tsvector('chinese', '我们去奶茶店')), ' ')").split()
    assert {"奶茶店", "奶茶"} <= set(lexemes), lexemes
    # db/zhparser-settings.sql, applied by the entrypoint on the new data directory.
    assert sql("SHOW zhparser.multi_short") == "on"
    assert sql("SHOW zhparser.punctuation_ignore") == "on"
    # A vector extension Immich accepts is available beside zhparser.
    assert sql("SELECT count(*) FROM pg_available_extensions WHERE name IN ('vchord', 'vectors', 'vector')") != "0"
    assert "root" not in database.process_users()

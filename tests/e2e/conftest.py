"""The real topology, once per Immich release: a real Immich server (API and jobs worker) whose
machine-learning URL is our gateway, the real AI service (RapidOCR, cn-clip RN50 on ONNX Runtime)
behind it, a stand-in of the stock ML server for faces (it cannot run here), and the real nginx
with deploy/immich-proxy.conf.template in front, on Immich's port. Photos are uploaded through
Immich's API and processed by Immich's own jobs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from testing import immich_server as real
from testing.images import text_image
from testing.immich_server import ImmichServer, User, immich_server, psql
from testing.nginx import Proxy, immich_proxy
from testing.postgres import Cluster, private_cluster
from testing.postgres import missing as missing_postgres
from testing.servers import ServiceProcess, serve
from testing.standins import Behaviour, stock_immich_ml
from testing.waiting import eventually

AI_KEY = "e2e-ai-key"
CLIP_NAME = "RN50__openai"  # Immich's name for the 1024-d model the AI service serves here
CLIP_DIMENSION = 1024


@dataclass
class Stack:
    immich: ImmichServer
    gateway: ServiceProcess
    ai: ServiceProcess
    proxy: Proxy
    faces: Behaviour
    faces_url: str
    postgres: Cluster
    photos: dict[str, str] = field(default_factory=dict)  # name -> asset id

    @property
    def admin(self) -> User:
        assert self.immich.admin is not None
        return self.immich.admin

    def user(self, name: str) -> User:
        return self.immich.users[name]

    def search(self, user: User, dto: dict[str, Any], **kwargs: Any) -> httpx.Response:
        """POST /api/search/smart through the proxy, as a client of Immich's port sends it."""
        headers = kwargs.pop("headers", user.key_headers)
        return httpx.post(f"{self.proxy.url}/api/search/smart", json=dto, headers=headers, timeout=60, **kwargs)

    def ocr_ids(self, user: User, words: str) -> list[str]:
        answer = self.search(user, {"query": f"ocr:{words}"})
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["assets"]["items"]]

    def found(self, user: User, words: str) -> list[str] | None:
        """What `ocr:words` finds, or None while the search cannot answer (503 after a restart)."""
        answer = self.search(user, {"query": f"ocr:{words}"})
        return [item["id"] for item in answer.json()["assets"]["items"]] if answer.status_code == 200 else None

    def immich_smart_ids(self, user: User, query: str, **dto: Any) -> set[str]:
        """Immich's own smart search, straight to Immich: every asset it lets `user` see (CLIP
        ranks them all), for the same filters."""
        answer = self.immich.ok("POST", "/api/search/smart", user, json={"query": query, "size": 1000, **dto})
        return {item["id"] for item in answer["assets"]["items"]}

    def sql(self, query: str) -> str:
        return psql(query, self.immich.database, self.postgres.port)

    def ocr_text(self, asset_id: str) -> str:
        return self.sql(f"SELECT coalesce(string_agg(text, ' '), '') FROM asset_ocr WHERE \"assetId\" = '{asset_id}'")

    def clip_dimension(self, asset_id: str) -> int:
        found = self.sql(f"SELECT vector_dims(embedding) FROM smart_search WHERE \"assetId\" = '{asset_id}'")
        return int(found) if found else 0

    def index_matches_immich(self) -> bool:
        """The word index holds exactly the photos whose visible OCR text Immich stores."""
        indexed = self.sql("SELECT string_agg(asset_id::text, ',' ORDER BY asset_id) FROM aio.ocr_index")
        stored = self.sql(
            "SELECT string_agg(id::text, ',' ORDER BY id)"
            ' FROM (SELECT DISTINCT "assetId" AS id FROM asset_ocr WHERE "isVisible") s'
        )
        return indexed == stored

    def processed(self, asset_id: str) -> bool:
        return bool(self.ocr_text(asset_id)) and self.clip_dimension(asset_id) > 0

    def upload(self, user: User, name: str, lines: list[str]) -> str:
        image = text_image(lines, font_size=64)
        self.photos[name] = asset = self.immich.upload(user, image.data, f"{name}.jpg")
        return asset

    def health(self) -> dict[str, Any]:
        details: dict[str, Any] = httpx.get(f"{self.gateway.url}/health", timeout=10).json()
        return details


def _missing_tools() -> str | None:
    for tool in ("nginx", "redis-server"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (.ci/run installs it; `apt-get install nginx-light redis-server`)"
    return None


@pytest.fixture(scope="package")
def postgres() -> Iterator[Cluster]:
    """The end-to-end tests' own PostgreSQL: one of them restarts it, which must never touch the
    machine's server."""
    if reason := missing_postgres():
        pytest.skip(reason)
    with private_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="package", params=real.RELEASES, ids=lambda v: f"immich-{v}")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, clip_root: Path, postgres: Cluster
) -> Iterator[Stack]:
    version = str(request.param)
    if reason := real.missing(version) or _missing_tools():
        pytest.skip(reason)
    work = tmp_path_factory.mktemp(f"immich-{version}")
    faces = Behaviour()
    ai = ServiceProcess(
        "mt_photos_ai",
        {
            "API_AUTH_KEY": AI_KEY,
            "CLIP_MODEL": "RN50",
            "CLIP_DOWNLOAD_ROOT": str(clip_root),
            "CLIP_AUTO_DOWNLOAD": "false",
            "DEVICE": "cpu",
            "PRELOAD": "ocr,clip",
            "LOG_LEVEL": "INFO",
            # Immich asks for PP-OCRv5_mobile: offline, its fetch fails and the bundled models serve.
            "OCR_MODEL_DIR": str(work / "ocr-models"),
        },
        "HTTP_PORT",
        work / "ai.log",
    )
    with serve(stock_immich_ml(faces)) as faces_url:
        gateway_env = {
            "MT_PHOTOS_API": ai.url,
            "MT_PHOTOS_API_KEY": AI_KEY,
            "IMMICH_API": faces_url,
            "DB_HOSTNAME": "127.0.0.1",
            "DB_PORT": str(postgres.port),
            "DB_PASSWORD": "",
            "LOG_LEVEL": "INFO",
            "HEALTH_INTERVAL": "0.5",
            "SYNC_INTERVAL": "0.5",
            "METRICS": "false",
        }
        gateway = ServiceProcess("gateway", gateway_env, "PORT", work / "gateway.log")
        ai.start()

        def start_gateway(immich: ImmichServer) -> None:
            # Before Immich, as compose starts them: the gateway meets an Immich still starting.
            gateway.env |= {"IMMICH_SERVER_URL": immich.url, "DB_DATABASE_NAME": immich.database}
            gateway.start()

        with immich_server(version, work, gateway.url, start_gateway, db_port=postgres.port) as immich:
            # The admin's key exists only now: the gateway restarts with it, as an operator would.
            gateway.stop()
            gateway.env["IMMICH_ADMIN_API_KEY"] = immich.admin.api_key if immich.admin else ""
            gateway.start()

            def configure(config: dict[str, Any]) -> None:
                ml = config["machineLearning"]
                ml["urls"] = [gateway.url]
                ml["clip"] |= {"enabled": True, "modelName": CLIP_NAME}
                ml["ocr"]["enabled"] = True
                ml["facialRecognition"]["enabled"] = True
                config["newVersionCheck"]["enabled"] = False

            immich.configure(configure)
            for name in ("alice", "bob"):
                immich.create_user(name)
            with immich_proxy(work / "nginx", gateway.url, immich.url) as proxy:
                try:
                    yield Stack(immich, gateway, ai, proxy, faces, faces_url, postgres)
                finally:
                    gateway.stop()
                    ai.stop()


@pytest.fixture(scope="package")
def photos(stack: Stack) -> dict[str, str]:
    """The photos every search test reads (never changed by a test), processed by Immich."""
    alice, bob = stack.user("alice"), stack.user("bob")
    stack.upload(alice, "invoice", ["增值税发票", "INVOICE 2026"])
    stack.upload(alice, "cafe", ["门口的咖啡店", "Coffee Shop"])
    stack.upload(bob, "menu", ["北京烤鸭菜单", "Roast Duck Menu"])
    names = dict(stack.photos)
    for asset in names.values():
        eventually(lambda a=asset: stack.processed(a), 180, f"Immich stored OCR text and a CLIP vector for {asset}")
    stack.immich.wait_idle()
    return names

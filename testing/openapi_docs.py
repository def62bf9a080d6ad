"""The committed OpenAPI documents (docs/) and the running services they describe.

Both are taken from the services themselves, running with their default settings and the default
CLIP model (a randomly initialised ViT-B-16: the gateway's /predict names the CLIP models that
fit the served one): `python -m testing.openapi_docs` writes them, the tests check them.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from gateway.app import create_app as create_gateway
from gateway.settings import Settings as GatewaySettings
from mt_photos_ai.app import create_app as create_ai
from mt_photos_ai.settings import Settings as AiSettings
from testing.checkpoints import create_random_checkpoint
from testing.servers import serve

DOCS = Path(__file__).resolve().parent.parent / "docs"
AI_DOC = DOCS / "openapi-ai.json"
GATEWAY_DOC = DOCS / "openapi-gateway.json"


@contextlib.contextmanager
def documented_ai(clip_root: Path, **settings: Any) -> Iterator[str]:
    """The AI service with its default settings (but `settings`), its CLIP model read from
    `clip_root`. Its document does not depend on the model."""
    values = {"clip_download_root": clip_root, "clip_auto_download": False, "device": "cpu", "preload": ["ocr", "clip"]}
    with serve(create_ai(AiSettings(**{**values, **settings}))) as url:
        yield url


@contextlib.contextmanager
def documented_gateway(ai_url: str, **settings: Any) -> Iterator[str]:
    """The gateway in front of `ai_url`, once it knows the CLIP model served there."""
    with serve(create_gateway(GatewaySettings(mt_photos_api=ai_url, health_interval=0.2, **settings))) as url:
        deadline = time.monotonic() + 30
        while not httpx.get(f"{url}/health").json().get("clip", {}).get("dimension"):
            assert time.monotonic() < deadline, "the gateway never learnt the served CLIP model"
            time.sleep(0.1)
        yield url


def document(url: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/openapi.json")
    answer.raise_for_status()
    return answer.json()  # type: ignore[no-any-return]


def write(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        create_random_checkpoint("ViT-B-16", Path(root))
        with documented_ai(Path(root)) as ai_url, documented_gateway(ai_url) as gateway_url:
            DOCS.mkdir(exist_ok=True)
            write(AI_DOC, document(ai_url))
            write(GATEWAY_DOC, document(gateway_url))
    print(f"wrote {AI_DOC.name} and {GATEWAY_DOC.name} in {DOCS}")


if __name__ == "__main__":
    main()

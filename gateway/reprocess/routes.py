"""POST /api/ai/assets/{id}/reprocess: the photo's owner (or an admin) asks for new results."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from aio_common.errors import Conflict, Invalid, NotFound
from aio_common.http import JsonResponse
from gateway import docs
from gateway.immich import sql
from gateway.immich.api import Credentials
from gateway.parts import parts_of
from gateway.reprocess.bodies import ReprocessAnswer, ReprocessRequest
from gateway.reprocess.service import FEATURE, KEPT_BECAUSE

router = APIRouter()


@router.post("/api/ai/assets/{asset_id}/reprocess", **docs.REPROCESS)  # type: ignore[arg-type]
async def reprocess_asset(asset_id: str, request: Request) -> Response:
    reprocessor = parts_of(request).reprocessor
    reprocessor.require_admin()
    body = await request.body()
    try:
        wanted = ReprocessRequest.model_validate_json(body) if body.strip() else ReprocessRequest()
    except ValidationError as exc:
        raise Invalid(f'Body must be {{"ocr": bool, "clip": bool}}: {exc.errors()[0]["msg"]}') from None
    if not (wanted.ocr or wanted.clip):
        raise Invalid('Nothing to re-process: set "ocr" or "clip" to true.')
    user = await reprocessor.immich_server.me(Credentials.of(request))  # Immich's 401/403 passed back as is
    try:
        asset = uuid.UUID(asset_id)
    except ValueError:
        raise NotFound(f"Asset {asset_id} not found.") from None
    async with reprocessor.db.use(FEATURE) as (pool, _):
        owner = await pool.fetchval(sql.ASSET_OWNER, asset)
    if owner is None or (str(owner) != user["id"] and not user.get("isAdmin")):
        raise NotFound(f"Asset {asset_id} not found.")
    outcome = await reprocessor.reprocess([asset], ocr=wanted.ocr, clip=wanted.clip)
    kept = {queue: KEPT_BECAUSE[queue] for queue in outcome.kept}
    if not (outcome.started or outcome.pending):
        raise Conflict(f"Nothing re-processed: the photo was {'; and '.join(kept.values())}. Remove the edit first.")
    answer = ReprocessAnswer(assetId=asset_id, queued=outcome.started, pending=outcome.pending, kept=kept)
    return JsonResponse(answer.model_dump(), status_code=202)

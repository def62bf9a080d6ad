"""`python -m mt_photos_ai`: serve the AI service with uvicorn on HTTP_PORT.
`python -m mt_photos_ai export-onnx`: export CLIP_MODEL's encoders to ONNX into
CLIP_DOWNLOAD_ROOT/onnx/<model> (needs torch and cn-clip; fetches the checkpoint if allowed)."""

from __future__ import annotations

import sys

from aio_common.logs import configure_logging
from mt_photos_ai.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    if sys.argv[1:2] == ["export-onnx"]:
        export(settings)
        return
    import uvicorn

    from mt_photos_ai.app import create_app

    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None)


def export(settings: Settings) -> None:
    from mt_photos_ai.clip_models import MODELS
    from mt_photos_ai.engines.clip import torch_installed
    from mt_photos_ai.sessions import ClipUnavailable

    if not torch_installed():
        raise SystemExit("error: export-onnx needs torch and cn-clip (pip install '.[ai]'; the GPU image has them)")
    from mt_photos_ai.export import export_onnx

    try:
        files = export_onnx(MODELS[settings.clip_model], settings.clip_download_root, settings.clip_auto_download)
    except ClipUnavailable as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"{settings.clip_model}: ONNX files written to {files.directory}")


if __name__ == "__main__":
    main()

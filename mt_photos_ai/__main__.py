"""The AI service's command line (`python -m mt_photos_ai`, or `mt-photos-ai`)."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from aio_common.logs import configure_logging
from mt_photos_ai.settings import Settings

DESCRIPTION = """Chinese OCR (RapidOCR) and Chinese-CLIP for Immich and MT Photos. Settings come
from the environment and .env (HTTP_PORT, API_AUTH_KEY, CLIP_MODEL, CLIP_DOWNLOAD_ROOT, ...;
the README lists each with its default)."""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="mt-photos-ai", description=DESCRIPTION)
    commands = root.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="serve the API on HTTP_HOST:HTTP_PORT (the default command)")
    commands.add_parser(
        "export-onnx",
        help="export CLIP_MODEL's encoders to ONNX into CLIP_DOWNLOAD_ROOT/onnx/<model>, for the torch-free "
        "install (needs torch and cn-clip; fetches the checkpoint when CLIP_AUTO_DOWNLOAD allows)",
    )
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = Settings()
    except ValidationError as exc:  # a setting the service cannot start with: said in one line each
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise SystemExit(f"error: {problems}") from None
    configure_logging(settings.log_level)
    if args.command == "export-onnx":
        export(settings)
        return
    try:
        import uvicorn

        from mt_photos_ai.app import create_app
    except ModuleNotFoundError as exc:  # an install without the AI service's extra
        raise SystemExit(
            f"error: the AI service needs its dependencies ({(exc.name or '').partition('.')[0]} is missing): "
            "pip install 'immich-all-in-one[ai-cpu]' (or [ai] for torch and CUDA)"
        ) from None
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

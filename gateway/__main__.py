"""The gateway's command line (`python -m gateway`, or `immich-gateway`)."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """The gateway Immich uses as its machine-learning URL: OCR and CLIP to the AI
service, faces to the stock Immich ML server, and the Chinese word search. Settings come from
the environment and .env (PORT, MT_PHOTOS_API, IMMICH_API, DB_*, ...; the README lists each
with its default)."""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="immich-gateway", description=DESCRIPTION)
    commands = root.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="serve on HOST:PORT (the default command)")
    # Its own options are read by its own parser: `reprocess --help` lists them.
    commands.add_parser("reprocess", add_help=False, help="re-process assets through Immich (see `reprocess --help`)")
    commands.add_parser(
        "uninstall", add_help=False, help="remove our schema and zhparser from Immich's database (`uninstall --help`)"
    )
    return root


def main(argv: list[str] | None = None) -> None:
    args, rest = parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.command not in ("reprocess", "uninstall") and rest:
        parser().error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        import uvicorn

        from aio_common.logs import configure_logging
        from gateway.app import create_app
        from gateway.settings import Settings
    except ModuleNotFoundError as exc:  # an install without the gateway's extra
        raise SystemExit(
            f"error: the gateway needs its dependencies ({(exc.name or '').partition('.')[0]} is missing): "
            "pip install 'immich-all-in-one[gateway]'"
        ) from None
    settings = Settings()
    configure_logging(settings.log_level)
    if args.command == "reprocess":
        from gateway.reprocess import cli

        cli.main(rest)
        return
    if args.command == "uninstall":
        from gateway import uninstall

        uninstall.main(rest)
        return
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()

"""`python -m gateway`: serve the gateway with uvicorn on PORT.
`python -m gateway reprocess ...`: re-process assets from the command line."""

from __future__ import annotations

import sys

import uvicorn

from aio_common.logs import configure_logging
from gateway.app import create_app
from gateway.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    if sys.argv[1:2] == ["reprocess"]:
        from gateway.reprocess import cli

        cli.main(sys.argv[2:])
        return
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()

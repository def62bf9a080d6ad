"""`python -m mt_photos_ai`: serve the AI service with uvicorn on HTTP_PORT."""

from __future__ import annotations

import uvicorn

from aio_common.logs import configure_logging
from mt_photos_ai.app import create_app
from mt_photos_ai.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None)


if __name__ == "__main__":
    main()

"""The stock Immich ML stand-in as its container runs it: port 3003 on every address, as Immich's
machine-learning image listens."""

from __future__ import annotations

import uvicorn

from testing.standins import Behaviour, stock_immich_ml

if __name__ == "__main__":
    uvicorn.run(stock_immich_ml(Behaviour()), host="0.0.0.0", port=3003, log_level="warning")

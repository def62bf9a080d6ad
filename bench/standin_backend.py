"""A stand-in ML backend for bench/gateway.py: parses the multipart like a real one, waits
DELAY_MS (0 = as fast as it can; an inference-like wait otherwise) and answers a fixed OCR
result. `python -m bench.standin_backend` serves it on PORT."""

from __future__ import annotations

import asyncio
import os

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

ANSWER = (
    b'{"ocr":{"text":["\xe5\x8f\x91\xe7\xa5\xa8"],"box":[0.1,0.1,0.5,0.1,0.5,0.2,0.1,0.2],'
    b'"boxScore":[0.9],"textScore":[0.95]},"imageHeight":1080,"imageWidth":1440}'
)

DELAY_S = float(os.environ.get("DELAY_MS", "0")) / 1000
app = FastAPI()


@app.get("/ping", response_class=PlainTextResponse)
async def ping() -> str:
    return "pong"


@app.get("/info")
async def info() -> dict:
    return {"clip": {"model": "ViT-B-16", "dimension": 512}}


@app.post("/predict")
async def predict(request: Request) -> Response:
    form = await request.form()
    await form["image"].read()  # type: ignore[union-attr]
    if DELAY_S:
        await asyncio.sleep(DELAY_S)
    return Response(ANSWER, media_type="application/json")


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")

"""The OCR word index `aio.ocr_index`, a mirror of each asset's visible OCR text in Immich:
how text becomes its words (words.py), the passes that keep it in step through Immich's change
feeds (passes.py, feeds.py), and its read side (query.py)."""

from __future__ import annotations

from typing import Literal

from gateway.search.passes import IndexPasses
from gateway.search.query import IndexQuery
from gateway.search.words import Words
from gateway.search.zhparser import Zhparser


class OcrIndex:
    def __init__(
        self, batch_size: int, tokenizer: Literal["auto", "zhparser", "jieba"], workers: int, zhparser: Zhparser
    ) -> None:
        self.words = Words(tokenizer, workers, zhparser)
        self.passes = IndexPasses(batch_size, workers, self.words)
        self.query = IndexQuery(self.words)

    async def close(self) -> None:
        await self.words.close()

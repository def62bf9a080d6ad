"""How text becomes the index's words and a query's words, by the chosen tokenizer: zhparser in
its own database, or jieba in worker processes (OCR_TOKENIZER). Folding and splitting rules are
in tokenize.py; this is the part that runs them."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

import asyncpg

from gateway.pg import Connection
from gateway.search.jieba_workers import JiebaWorkers
from gateway.search.tokenize import (
    JIEBA,
    ZHPARSER,
    TextQuery,
    Tokenizer,
    fold,
    grams,
    word_forms_sql,
    zhparser_query,
)
from gateway.search.zhparser import Zhparser, ZhparserUnavailable

log = logging.getLogger(__name__)

# Statements that read or write the whole library run without the per-query timeout.
LONG_QUERY_TIMEOUT = 3600.0


class Words:
    def __init__(self, wanted: Literal["auto", "zhparser", "jieba"], workers: int, zhparser: Zhparser) -> None:
        self.wanted = wanted
        self.workers = workers
        self.zhparser = zhparser
        self.tokenizer: Tokenizer | None = None  # chosen by `choose`, in use after `use`
        self._jieba: JiebaWorkers | None = None  # started when jieba is in use

    async def choose(self, conn: Connection) -> Tokenizer:
        """zhparser when the server has it and its database can be opened (OCR_TOKENIZER=auto),
        else jieba; a forced choice that cannot be had raises."""
        available = await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'zhparser'")
        if self.wanted == JIEBA or (self.wanted == "auto" and not available):
            await self.zhparser.close()
            return JIEBA
        if not available:
            raise RuntimeError("OCR_TOKENIZER=zhparser, but this PostgreSQL server has no zhparser extension")
        try:
            await self.zhparser.open(conn)
        except ZhparserUnavailable as exc:
            if self.wanted == ZHPARSER:
                raise
            log.warning("zhparser is installed but cannot be used: using jieba", extra={"error": exc.message})
            return JIEBA
        return ZHPARSER

    async def use(self, tokenizer: Tokenizer) -> None:
        """Split with `tokenizer` from now on (jieba's worker loads its dictionary now, not in a search)."""
        self.tokenizer = tokenizer
        if tokenizer == ZHPARSER:
            self.idle(stop=True)
        elif self._jieba is None:
            self._jieba = JiebaWorkers(self.workers)
            await self._jieba.query("")

    def idle(self, *, stop: bool = False) -> None:
        """After a pass: the pool of a long pass goes; with `stop`, jieba's workers too."""
        if self._jieba is not None:
            self._jieba.idle()
            if stop:
                self._jieba = None

    async def close(self) -> None:
        self.idle(stop=True)
        await self.zhparser.close()

    async def documents(self, texts: list[str], spread: bool) -> tuple[list[str], list[str]]:
        """The index rows' documents: zhparser's words of the folded texts as tsvector text, or
        folded jieba words (`spread`: part of a long pass, split on every worker); and their
        grams, as tsvector text."""
        if self._jieba is None:

            def folded_and_grams() -> tuple[list[str], list[str]]:
                folded = [fold(text) for text in texts]
                return folded, [grams(text) for text in folded]

            folded, literal = await asyncio.to_thread(folded_and_grams)
            return await self.zhparser.documents(folded, timeout=LONG_QUERY_TIMEOUT), literal
        pairs = await self._jieba.documents(texts, spread=spread)
        return [words for words, _ in pairs], [literal for _, literal in pairs]

    async def query(self, pool: asyncpg.Pool, text: str) -> TextQuery:
        """The query folded and split like the documents, each run as words or literally
        (tokenize.query_run); no runs when nothing is left (only stop words or punctuation).
        A NUL, which no PostgreSQL text holds, separates words."""
        text = text.replace("\x00", " ")
        if self._jieba is None:
            runs = (await asyncio.to_thread(fold, text)).split()
            tokens = await self.zhparser.tokens(runs)
            matched = [zhparser_query(run, words) for run, words in zip(runs, tokens, strict=True)]
            query = [run for run in matched if run is not None]
        else:
            query = await self._jieba.query(text)
        if not query:
            return TextQuery(())
        expression, params = word_forms_sql(query)
        forms = await pool.fetchval(f"SELECT {expression}", *params)
        return TextQuery(tuple((words or None, run.literal) for words, run in zip(forms, query, strict=True)))

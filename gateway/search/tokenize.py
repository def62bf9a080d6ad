"""Word splitting for the index: zhparser in the database when it has it, else jieba in Python.

One tokenizer per index: the index records which one built it and queries use the same one.
Both paths end in PostgreSQL full text search (a tsvector per asset, a tsquery per search).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import jieba

log = logging.getLogger(__name__)

ZHPARSER = "zhparser"
JIEBA = "jieba"

_jieba_ready = threading.Lock()

# Function words that say nothing about a photo, left out on both sides (zhparser's `chinese`
# configuration likewise maps only content words: nouns, verbs, adjectives, idioms...).
STOP_WORDS = frozenset(
    "的 了 是 在 和 与 及 或 也 都 就 而 之 着 过 吗 呢 吧 啊 把 被 这 那 其 于 以 a an the of and or to is are".split()
)


def _is_word(token: str) -> bool:
    return not token.isspace() and token.lower() not in STOP_WORDS


def warm_up_jieba() -> None:
    """Load jieba's dictionary once (about a second); later calls are cheap."""
    with _jieba_ready:
        if not jieba.dt.initialized:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()


def jieba_document(text: str) -> str:
    """The text as space-separated search words: every word plus its dictionary sub-words
    (增值税电子普通发票 -> 增值 增值税 电子 普通 发票 普通发票), for the `simple` configuration."""
    warm_up_jieba()
    return " ".join(word for word in jieba.cut_for_search(text) if _is_word(word))


@dataclass(frozen=True)
class QueryWord:
    """One word of a query: matches itself, or all of `parts` (its sub-words) together."""

    word: str
    parts: tuple[str, ...]


def jieba_query(text: str) -> list[QueryWord]:
    """Split a query into words; each word must match. A word the document may hold only as its
    sub-words (电子发票 written as 电子 … 发票) also matches through those."""
    warm_up_jieba()
    return [QueryWord(word, _tiling(word)) for word in jieba.cut(text) if _is_word(word)]


def _tiling(word: str) -> tuple[str, ...]:
    """Sub-words of `word` from jieba's search mode that cover it end to end, if any do."""
    pieces = [p for p in jieba.cut_for_search(word) if p != word]
    tiling, end = [], 0
    for piece in pieces:
        if word.startswith(piece, end):
            tiling.append(piece)
            end += len(piece)
    return tuple(tiling) if end == len(word) and len(tiling) > 1 else ()


def jieba_tsquery_sql(words: list[QueryWord]) -> tuple[str, list[str]]:
    """A parameterised SQL expression for the query's tsquery; every word a bound parameter, so
    any text is safe (no tsquery syntax, no injection)."""
    params: list[str] = []

    def lexeme(word: str) -> str:
        params.append(word)
        return f"plainto_tsquery('simple', ${len(params)})"

    terms = []
    for word in words:
        term = lexeme(word.word)
        if word.parts:
            term = f"({term} || ({' && '.join(lexeme(part) for part in word.parts)}))"
        terms.append(term)
    return (" && ".join(terms) if terms else "''::tsquery"), params

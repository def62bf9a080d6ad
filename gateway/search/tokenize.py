"""Words for the index: folding, then splitting by zhparser in the database or by jieba (in
worker processes, see jieba_workers.py: its dictionary never loads into the gateway itself).

Folding makes matching script- and width-insensitive: Unicode NFKC (full-width letters and
digits become ASCII) and traditional -> simplified Chinese (OpenCC `t2s`, dictionaries shipped in
the wheel); punctuation and symbols become spaces and letters are split from digits, so both
tokenizers see `No.123`, `Tel12345678` and `¥28` as the same words. Documents and queries are
folded alike; the index records the tokenizer and the folding it was built with and is rebuilt
when either changes.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Literal

import jieba
import opencc

log = logging.getLogger(__name__)

Tokenizer = Literal["zhparser", "jieba"]
ZHPARSER: Tokenizer = "zhparser"
JIEBA: Tokenizer = "jieba"
# Bump when `fold` changes: stored words were built with the old folding.
FOLDING = "nfkc+opencc-t2s+words/1"
_SEPARATOR = re.compile(r"(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")

# zhparser's settings, on every connection of ours (and in db/'s init SQL for everyone else):
# multi_short also indexes the short words inside a compound, so 奶茶 finds 奶茶店 as jieba's
# search mode does; punctuation is never a word.
ZHPARSER_SETTINGS = {"zhparser.multi_short": "on", "zhparser.punctuation_ignore": "on"}
# How each tokenizer splits, recorded with the index: a change (zhparser's settings or token
# types in zhparser.sql, the stop words) rebuilds it.
SPLITTING = {"zhparser": "multi_short,punctuation_ignore;types-2", "jieba": "search-mode;stop-words-1"}

_ready = threading.Lock()
_converter: opencc.OpenCC | None = None
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _symbols() -> re.Pattern[str]:
    """Runs of the Basic Multilingual Plane's punctuation marks and symbols, as one character class."""
    codes = [code for code in range(0x10000) if unicodedata.category(chr(code))[0] in "PS"]
    ranges, start = [], codes[0]
    for previous, code in zip(codes, [*codes[1:], -1], strict=True):
        if code != previous + 1:
            ranges.append(re.escape(chr(start)) + ("" if start == previous else "-" + re.escape(chr(previous))))
            start = code
    return re.compile("[" + "".join(ranges) + "]+")


_SYMBOLS = _symbols()

# Function words that say nothing about a photo, left out on the jieba path (zhparser's
# `chinese` configuration likewise maps only content words: nouns, verbs, adjectives...).
STOP_WORDS = frozenset(
    "的 了 是 在 和 与 及 或 也 都 就 而 之 着 过 吗 呢 吧 啊 把 被 这 那 其 于 以 a an the of and or to is are".split()
)


def _t2s() -> opencc.OpenCC:
    """OpenCC's traditional -> simplified converter, loaded once (a few ms)."""
    global _converter
    with _ready:
        if _converter is None:
            _converter = opencc.OpenCC("t2s")
        return _converter


def load_jieba() -> None:
    """Load jieba's dictionary (about a second, much of it holding the GIL): in workers only."""
    with _ready:
        if not jieba.dt.initialized:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()


def fold(text: str) -> str:
    """Width- and script-insensitive words of `text`: NFKC, traditional -> simplified,
    punctuation and symbols as spaces, letters apart from digits."""
    simplified = str(_t2s().convert(unicodedata.normalize("NFKC", text)))
    spaced = _ASTRAL.sub(_symbol_as_space, _SYMBOLS.sub(" ", simplified))
    return _SEPARATOR.sub(" ", spaced)


def _symbol_as_space(match: re.Match[str]) -> str:
    """Outside the BMP: emoji and other symbols become spaces, ideographs stay."""
    return " " if unicodedata.category(match.group())[0] in "PS" else match.group()


def _is_word(token: str) -> bool:
    return not token.isspace() and token.lower() not in STOP_WORDS


def jieba_documents(texts: list[str]) -> list[str]:
    """Each text folded, as space-separated search words: every word plus its dictionary
    sub-words (增值税电子普通发票 -> 增值 增值税 电子 普通 发票 普通发票), for `simple`."""
    load_jieba()
    return [" ".join(word for word in jieba.cut_for_search(fold(text)) if _is_word(word)) for text in texts]


@dataclass(frozen=True)
class QueryWord:
    """One word of a query: matches itself, or all of `parts` (its sub-words) together."""

    word: str
    parts: tuple[str, ...]


def jieba_query(text: str) -> list[QueryWord]:
    """Fold and split a query into words; each word must match. A word the document may hold
    only as its sub-words (电子发票 written as 电子 … 发票) also matches through those."""
    load_jieba()
    return [
        QueryWord(word, tiling(word, [p for p in jieba.cut_for_search(word) if p != word]))
        for word in jieba.cut(fold(text))
        if _is_word(word)
    ]


def zhparser_query(tokens: list[str]) -> list[QueryWord]:
    """Query words from zhparser's tokens of a folded query. With multi_short a compound comes
    first, then the short words inside it; those that tile it are its parts, as on jieba's path."""
    words: list[tuple[str, list[str]]] = []
    for token in tokens:
        if words and token != words[-1][0] and token in words[-1][0]:
            words[-1][1].append(token)
        else:
            words.append((token, []))
    return [QueryWord(word, tiling(word, pieces)) for word, pieces in words]


def tiling(word: str, pieces: list[str]) -> tuple[str, ...]:
    """The `pieces` (sub-words of `word`, in order) that cover it end to end, if any do: a word
    also matches a document holding only those (电子发票 written as 电子 … 发票). Pieces that
    leave a gap never do, so characters straddling two words never match (研究生 in 研究生命)."""
    covered, end = [], 0
    for piece in pieces:
        if word.startswith(piece, end):
            covered.append(piece)
            end += len(piece)
    return tuple(covered) if end == len(word) and len(covered) > 1 else ()


def tsquery_sql(words: list[QueryWord]) -> tuple[str, list[str]]:
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

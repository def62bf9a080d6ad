"""Words for the index: folding, then splitting by zhparser in the database or by jieba (in
worker processes, see jieba_workers.py: its dictionary never loads into the gateway itself).

Folding makes matching script- and width-insensitive: Unicode NFKC (full-width letters and
digits become ASCII) and traditional -> simplified Chinese (OpenCC `t2s`, dictionaries shipped in
the wheel); punctuation and symbols become spaces and letters are split from digits, so both
tokenizers see `No.123`, `Tel12345678` and `¥28` as the same words. Documents and queries are
folded alike; the index records the tokenizer and the folding it was built with and is rebuilt
when either changes.

Literal matching keeps what the tokenizer cannot place. Every character of a folded document is
also indexed in a gram, in a column of its own: each pair of adjacent characters of a run, at its
position, and a run's last character. A query run the tokenizer does not know as words (a name
it splits into single characters or loses characters of, a single character) then matches as a
substring: the phrase of its pairs (蜜雪冰城: '蜜雪' <-> '雪冰' <-> '冰城'), or the grams that
begin with its one character. A Latin or digit run matches as a word or as a substring (recei
finds RECEIPT). With the words in a column apart, a ranking puts photos that match as words
first reading the small words alone.
"""

from __future__ import annotations

import itertools
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
# Bump when the grams change.
LITERAL = "grams:pairs,last-of-run;own-column/3"
# PostgreSQL's largest tsvector position.
MAX_POSITION = 16383

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


def jieba_documents(texts: list[str]) -> list[tuple[str, str]]:
    """Each text folded, as space-separated search words (every word plus its dictionary
    sub-words: 增值税电子普通发票 -> 增值 增值税 电子 普通 发票 普通发票, for `simple`), and its
    grams as tsvector text."""
    load_jieba()
    documents = []
    for text in texts:
        folded = fold(text)
        words = " ".join(word for word in jieba.cut_for_search(folded) if _is_word(word))
        documents.append((words, grams(folded)))
    return documents


def grams(folded: str) -> str:
    """The grams of a folded text, lower case, as tsvector text with their positions: each pair
    of adjacent characters of a run, and the last character of a run when it is not an ASCII
    letter or digit (so that every such character begins a gram). Runs are one position apart,
    so no phrase of pairs crosses a space; PostgreSQL keeps positions up to 16383 and 256 of
    them per lexeme."""
    positions: dict[str, list[int]] = {}
    start = 1
    for run in folded.lower().split():
        for at, pair in enumerate(map("".join, itertools.pairwise(run)), start):
            positions.setdefault(pair, []).append(at)
        if run[-1] > "\x7f":
            positions.setdefault(run[-1], []).append(start + len(run) - 1)
        start += len(run) + 1
        if start > MAX_POSITION:
            break
    return " ".join(f"'{_quoted(lexeme)}':{','.join(map(str, spots))}" for lexeme, spots in positions.items())


def _quoted(lexeme: str) -> str:
    """A lexeme inside tsvector or tsquery quotes (folding leaves neither quote nor backslash;
    escaped all the same)."""
    return lexeme.replace("\\", "\\\\").replace("'", "''")


def pairs(fragment: str) -> list[str]:
    """The pairs of adjacent characters of `fragment` (folded, one run), as the grams hold them."""
    fragment = fragment.lower()
    return [fragment[i : i + 2] for i in range(len(fragment) - 1)]


def literal(fragment: str) -> str:
    """The tsquery text that finds `fragment` (folded, one run) as a substring: the grams that
    begin with its one character, or the phrase of its pairs."""
    if len(fragment) == 1:
        return f"'{_quoted(fragment.lower())}':*"
    return " <-> ".join(f"'{_quoted(pair)}'" for pair in pairs(fragment))


@dataclass(frozen=True)
class QueryWord:
    """One word of a query: matches itself, or all of `parts` (its sub-words) together. `known`:
    the tokenizer's dictionary holds it (jieba also makes up words it has never seen)."""

    word: str
    parts: tuple[str, ...]
    known: bool = True


@dataclass(frozen=True)
class QueryRun:
    """One run of a query (between spaces): as words, literally, or either."""

    words: tuple[QueryWord, ...]
    literal: str | None


def query_run(run: str, words: list[QueryWord]) -> QueryRun | None:
    """How the folded `run` matches, given the tokenizer's words of it: as those words where they
    spell it out whole (function words between them aside) and each is a known word of more than
    one character; a Latin or digit run also literally; any other run (a name, a single
    character, a run the tokenizer lost characters of) only literally. None for a Latin stop
    word (the, of)."""
    if run.isascii():
        if not words:
            return None
        return QueryRun(tuple(words), run if len(run) > 1 and run.isalnum() else None)
    known = all((word.known or word.word.isascii()) and len(word.word) > 1 for word in words)
    if words and known and _spells(run.lower(), [word.word.lower() for word in words]):
        return QueryRun(tuple(words), None)
    return QueryRun((), run)


def _spells(run: str, words: list[str]) -> bool:
    """Whether `words`, in order, make up `run`, with nothing but single-character function
    words (的, 和) between or around them."""
    at = 0
    for word in words:
        while not run.startswith(word, at):
            if run[at : at + 1] not in STOP_WORDS:
                return False
            at += 1
        at += len(word)
    return all(char in STOP_WORDS for char in run[at:])


def jieba_query(text: str) -> list[QueryRun]:
    """Fold and split a query into runs, each split into words (each must match). A word the
    document may hold only as its sub-words (电子发票 written as 电子 … 发票) also matches through
    those."""
    load_jieba()
    runs = []
    for run in fold(text).split():
        words = [
            QueryWord(
                word,
                tiling(word, [p for p in jieba.cut_for_search(word) if p != word]),
                jieba.dt.FREQ.get(word, 0) > 0,
            )
            for word in jieba.cut(run)
            if _is_word(word)
        ]
        if (matched := query_run(run, words)) is not None:
            runs.append(matched)
    return runs


def zhparser_query(run: str, tokens: list[str]) -> QueryRun | None:
    """How the folded `run` matches, from zhparser's tokens of it. With multi_short a compound
    comes first, then the short words inside it; those that tile it are its parts, as on jieba's
    path."""
    words: list[tuple[str, list[str]]] = []
    for token in tokens:
        if words and token != words[-1][0] and token in words[-1][0]:
            words[-1][1].append(token)
        else:
            words.append((token, []))
    return query_run(run, [QueryWord(word, tiling(word, pieces)) for word, pieces in words])


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


@dataclass(frozen=True)
class TextQuery:
    """A query as the index matches it, run by run: each run's words as a tsquery on the
    `words` column, and the folded run itself where it may match literally (as `literal`'s
    tsquery on `grams`); a run matches by either, and every run must match. No runs: nothing
    matches."""

    runs: tuple[tuple[str | None, str | None], ...]

    @property
    def words(self) -> str | None:
        """Any run's words (a tsquery): a photo holding them matches as words."""
        forms = [f"({words})" for words, _ in self.runs if words is not None]
        return " | ".join(forms) or None

    @property
    def fragments(self) -> list[str]:
        """The runs that may match literally: a photo may match without any of the words."""
        return [fragment for _, fragment in self.runs if fragment is not None]


def word_forms_sql(runs: list[QueryRun]) -> tuple[str, list[str]]:
    """A parameterised SQL expression for each run's words as tsquery text (a text[]; NULL for
    a run that matches only literally): every word of the run must match, itself or as all its
    parts. Every word is a bound parameter, so any text is safe."""
    params: list[str] = []

    def lexeme(word: str) -> str:
        params.append(word)
        return f"plainto_tsquery('simple', ${len(params)})"

    forms = []
    for run in runs:
        word_terms = []
        for word in run.words:
            term = lexeme(word.word)
            if word.parts:
                term = f"({term} || ({' && '.join(lexeme(part) for part in word.parts)}))"
            word_terms.append(term)
        forms.append(f"({' && '.join(word_terms)})::text" if word_terms else "NULL")
    return f"ARRAY[{', '.join(forms)}]::text[]", params

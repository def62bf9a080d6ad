"""Immich's search request and answer as far as the gateway reads and writes them (3.2's
SmartSearchDto with its `filter` tree; the shapes of @immich/sdk 3.2.2).

Fields the gateway applies are typed and checked; every other field is kept, so the gateway can
name what it did not apply and forward requests unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

AssetType = Literal["IMAGE", "VIDEO", "AUDIO", "OTHER"]
Visibility = Literal["archive", "timeline", "hidden", "locked"]

# An RFC 3339 date-time with its offset, as JSON Schema's `date-time` (and Immich's clients) write
# it; pydantic alone would also take numbers (as Unix time) and bare dates.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: object) -> object:
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("not an RFC 3339 date-time with an offset")
    if not isinstance(value, (str, datetime)):
        raise ValueError("a date-time must be a string")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]


# JavaScript's largest exact integer: Immich's validation (zod's z.int()) takes none beyond it.
MAX_SAFE_INTEGER = 2**53 - 1


def _json_int(value: object) -> object:
    """An integer as JavaScript reads JSON: 2 and 2.0 are the same number; "2" and true are not,
    nor is one beyond JavaScript's exact range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        value = int(value)
    if abs(value) > MAX_SAFE_INTEGER:
        raise ValueError("must be a safe integer")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_int)]

# Immich's largest page, and Immich's default page size of a smart search.
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


class _Filter(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class VisibilityFilter(_Filter):
    eq: Visibility | None = None
    ne: Visibility | None = None
    in_: list[Visibility] | None = Field(default=None, alias="in")
    notIn: list[Visibility] | None = None


class TypeFilter(_Filter):
    eq: AssetType | None = None
    ne: AssetType | None = None
    in_: list[AssetType] | None = Field(default=None, alias="in")
    notIn: list[AssetType] | None = None


class BoolFilter(_Filter):
    eq: StrictBool


class DateFilter(_Filter):
    """`eq`/`ne` may be null where the column is nullable (trashedAt): null means IS NULL."""

    eq: Timestamp | None = None
    ne: Timestamp | None = None
    gt: Timestamp | None = None
    gte: Timestamp | None = None
    lt: Timestamp | None = None
    lte: Timestamp | None = None


class IdFilter(_Filter):
    eq: UUID | None = None
    ne: UUID | None = None


class FilterBranch(BaseModel):
    """One branch of SearchFilter: its conditions all hold. Other keys are kept (not applied)."""

    model_config = ConfigDict(extra="allow")

    visibility: VisibilityFilter | None = None
    type: TypeFilter | None = None
    isFavorite: BoolFilter | None = None
    takenAt: DateFilter | None = None
    createdAt: DateFilter | None = None
    updatedAt: DateFilter | None = None
    trashedAt: DateFilter | None = None
    id: IdFilter | None = None

    def not_applied(self) -> list[str]:
        return sorted(name for name, value in (self.model_extra or {}).items() if value not in (None, {}, []))


class SearchFilter(FilterBranch):
    """3.2's filter tree: the top-level conditions, and any one of the `or` branches."""

    or_: list[FilterBranch] | None = Field(default=None, alias="or")

    def not_applied(self) -> list[str]:
        names = set(super().not_applied())
        for branch in self.or_ or []:
            names.update(branch.not_applied())
        return sorted(f"filter.{name}" for name in names)

    def mentions(self, field: str) -> bool:
        return getattr(self, field) is not None or any(getattr(b, field) is not None for b in self.or_ or [])


# SmartSearchDto fields that filter results but that the gateway does not apply to OCR hits.
UNAPPLIED_FLAT = (
    "albumIds",
    "city",
    "country",
    "isEncoded",
    "isMotion",
    "isNotInAlbum",
    "isOffline",
    "lensModel",
    "libraryId",
    "make",
    "model",
    "ocr",
    "personIds",
    "rating",
    "state",
    "tagIds",
)
# Fields Immich applies whenever they are present: null and "" match assets without a value.
_FILTER_WHEN_PRESENT = ("city", "country", "lensModel", "make", "model", "rating", "state")


def filters_in(fields: dict[str, Any], names: Iterable[str]) -> list[str]:
    """Which of `names` filter in `fields`, as Immich reads them: a null or empty value is no
    filter, except where Immich matches it (a null `tagIds` keeps untagged assets; see above);
    `isNotInAlbum: false` is none."""
    return [
        name
        for name in names
        if name in fields
        and (
            name in _FILTER_WHEN_PRESENT
            or (name == "tagIds" and fields[name] is None)
            or (fields[name] not in (None, [], "") and not (name == "isNotInAlbum" and fields[name] is False))
        )
    ]


class SmartSearch(BaseModel):
    """Immich's SmartSearchDto: paging, the filters applied to OCR hits, and everything else kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    query: str
    # Strict, as Immich's validation: "2" is not a page, 1 is not a boolean.
    page: JsonInt = Field(default=1, ge=1, le=MAX_SAFE_INTEGER)
    size: JsonInt = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    type: AssetType | None = None
    isFavorite: StrictBool | None = None
    visibility: Visibility | None = None
    withDeleted: StrictBool = False
    createdAfter: Timestamp | None = None
    createdBefore: Timestamp | None = None
    takenAfter: Timestamp | None = None
    takenBefore: Timestamp | None = None
    trashedAfter: Timestamp | None = None
    trashedBefore: Timestamp | None = None
    updatedAfter: Timestamp | None = None
    updatedBefore: Timestamp | None = None
    filter: SearchFilter | None = None

    def not_applied(self) -> list[str]:
        """The filters of this request that the OCR ranking does not apply (Immich's CLIP does)."""
        flat = filters_in(self.model_extra or {}, UNAPPLIED_FLAT)
        return flat + (self.filter.not_applied() if self.filter else [])


class RankedSmartSearch(SmartSearch):
    """SmartSearchDto with `ocr`: what CLIP ranks (words or an example asset) besides the filters.
    `query` is the words without a prefix, '' when the request ranks by `queryAssetId`."""

    queryAssetId: UUID | None = None
    language: str | None = None
    withExif: StrictBool = False


class NotText(ValueError):
    """An `ocr` condition that is not a string: Immich's own 400."""


def take_ocr(data: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """Immich's `ocr` condition of a search request (the flat field, 3.2's top-level
    `filter.ocr.matches`, or both: all their words must match) and the request without it; None
    when there is none or it is blank. An `ocr` inside an `or` branch stays in the request (not
    applied). NotText when a condition is not a string."""
    data = dict(data)
    words: list[object] = []
    if "ocr" in data:
        words.append(data.pop("ocr"))
    tree = data.get("filter")
    if isinstance(tree, dict) and "ocr" in tree:
        condition = tree["ocr"]
        if not isinstance(condition, dict) or set(condition) != {"matches"}:
            raise NotText("filter.ocr must be {matches: string}")
        data["filter"] = {key: value for key, value in tree.items() if key != "ocr"}
        words.append(condition["matches"])
    if not all(isinstance(w, str) for w in words):
        raise NotText("ocr must be a string")
    text = " ".join(str(w).strip() for w in words).strip()
    return (text, data) if text else None


# Immich's default page size of a metadata search.
DEFAULT_METADATA_PAGE_SIZE = 250
# MetadataSearchDto fields that shape the answer, not which assets it holds.
ANSWER_SHAPE = ("withExif", "withPeople", "withStacked")
# The filters both DTOs share and the OCR index applies (3.2's tree among them): SmartSearch's, which
# holds their types.
SHARED_FILTERS = tuple(name for name in SmartSearch.model_fields if name not in ("query", "page", "size"))


class MetadataSearch(BaseModel):
    """Immich's MetadataSearchDto with `ocr` (its OCR search type): the word, paging and date
    order; the filters the index applies are checked as SmartSearch checks them, and any other
    field is kept so the request can go to Immich unchanged."""

    model_config = ConfigDict(extra="allow")

    ocr: str
    page: JsonInt = Field(default=1, ge=1, le=MAX_SAFE_INTEGER)
    size: JsonInt = Field(default=DEFAULT_METADATA_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    order: Literal["asc", "desc"] = "desc"
    withExif: StrictBool = False

    def filters(self) -> SmartSearch:
        """The shared filters, typed and checked (ValidationError as SmartSearch raises it)."""
        extra = self.model_extra or {}
        return SmartSearch.model_validate(
            {"query": self.ocr, **{name: extra[name] for name in SHARED_FILTERS if name in extra}}
        )

    def not_applied(self) -> list[str]:
        """Fields that filter, beyond what the index applies: Immich answers such a request."""
        extra = self.model_extra or {}
        tree = self.filters().filter
        others = sorted(filters_in(extra, [name for name in extra if name not in SHARED_FILTERS + ANSWER_SHAPE]))
        return others + (tree.not_applied() if tree else [])


def search_response(items: list[dict[str, Any]], next_page: int | None) -> dict[str, Any]:
    """Immich's SearchResponseDto with assets only; smart search pages by number (no cursor)."""
    return {
        "albums": {"total": 0, "count": 0, "items": [], "facets": []},
        "assets": {
            "total": len(items),
            "count": len(items),
            "items": items,
            "facets": [],
            "nextPage": str(next_page) if next_page else None,
            "nextCursor": None,
        },
    }

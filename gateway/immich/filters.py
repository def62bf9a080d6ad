"""Immich's search filters as SQL conditions on `asset a`: the flat SmartSearchDto fields and
3.2's filter tree, with the defaults of the connected release (visibility, trash, locked).

Every value is a bound parameter, so any request is safe. The tree means: the flat fields and
the top-level conditions all hold, and when `or` is given, at least one branch holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.immich.dto import (
    BoolFilter,
    DateFilter,
    FilterBranch,
    IdFilter,
    SmartSearch,
    TypeFilter,
    VisibilityFilter,
)
from gateway.immich.facts import ImmichFacts
from gateway.immich.sql import FILTER_COLUMNS, searchable_owners

_COMPARISONS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass
class Params:
    """Positional parameters of one statement; `add` returns the placeholder of a new one."""

    values: list[Any] = field(default_factory=list)

    def add(self, value: Any, cast: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{cast}"


def search_conditions(dto: SmartSearch, facts: ImmichFacts, me: str, params: Params) -> str:
    """The WHERE conditions (without WHERE) for `dto`, searched by the user `me` (a placeholder)."""
    conditions = [f"{FILTER_COLUMNS['ownerId']} IN ({searchable_owners(me)})"]
    conditions += _flat(dto, params)
    tree = dto.filter
    if tree is not None:
        conditions += _branch(tree, params)
        if tree.or_:
            branches = [" AND ".join(_branch(b, params)) or "true" for b in tree.or_]
            conditions.append("(" + " OR ".join(f"({b})" for b in branches) + ")")
    conditions += _defaults(dto, facts, me, params)
    return "\n  AND ".join(conditions)


def _flat(dto: SmartSearch, p: Params) -> list[str]:
    column = FILTER_COLUMNS
    ranges = [
        ("createdAt", dto.createdAfter, dto.createdBefore),
        ("takenAt", dto.takenAfter, dto.takenBefore),
        ("trashedAt", dto.trashedAfter, dto.trashedBefore),
        ("updatedAt", dto.updatedAfter, dto.updatedBefore),
    ]
    out = []
    if dto.type is not None:
        out.append(f"{column['type']} = {p.add(dto.type, 'text')}")
    if dto.isFavorite is not None:
        out.append(f"{column['isFavorite']} = {p.add(dto.isFavorite, 'boolean')}")
    if dto.visibility is not None:
        out.append(f"{column['visibility']} = {p.add(dto.visibility, 'text')}")
    for name, after, before in ranges:
        if after is not None:
            out.append(f"{column[name]} >= {p.add(after, 'timestamptz')}")
        if before is not None:
            out.append(f"{column[name]} <= {p.add(before, 'timestamptz')}")
    return out


def _branch(branch: FilterBranch, p: Params) -> list[str]:
    out: list[str] = []
    for name, condition in (("visibility", branch.visibility), ("type", branch.type)):
        if condition is not None:
            out += _enum(FILTER_COLUMNS[name], condition, p)
    if branch.isFavorite is not None:
        out += _bool(FILTER_COLUMNS["isFavorite"], branch.isFavorite, p)
    for name in ("takenAt", "createdAt", "updatedAt", "trashedAt"):
        condition = getattr(branch, name)
        if condition is not None:
            out += _dates(FILTER_COLUMNS[name], condition, p)
    if branch.id is not None:
        out += _id(FILTER_COLUMNS["id"], branch.id, p)
    return out


def _enum(column: str, condition: VisibilityFilter | TypeFilter, p: Params) -> list[str]:
    out = []
    if condition.eq is not None:
        out.append(f"{column} = {p.add(condition.eq, 'text')}")
    if condition.ne is not None:
        out.append(f"{column} <> {p.add(condition.ne, 'text')}")
    if condition.in_ is not None:
        out.append(f"{column} = ANY({p.add(list(condition.in_), 'text[]')})")
    if condition.notIn is not None:
        out.append(f"NOT ({column} = ANY({p.add(list(condition.notIn), 'text[]')}))")
    return out


def _bool(column: str, condition: BoolFilter, p: Params) -> list[str]:
    return [f"{column} = {p.add(condition.eq, 'boolean')}"]


def _dates(column: str, condition: DateFilter, p: Params) -> list[str]:
    out = []
    for operator in condition.model_fields_set:
        value = getattr(condition, operator)
        if value is None:  # only eq/ne of a nullable column can be null
            out.append(f"{column} IS {'NOT ' if operator == 'ne' else ''}NULL")
        else:
            out.append(f"{column} {_COMPARISONS[operator]} {p.add(value, 'timestamptz')}")
    return sorted(out)


def _id(column: str, condition: IdFilter, p: Params) -> list[str]:
    out = []
    if condition.eq is not None:
        out.append(f"{column} = {p.add(condition.eq, 'uuid')}")
    if condition.ne is not None:
        out.append(f"{column} <> {p.add(condition.ne, 'uuid')}")
    return out


def _defaults(dto: SmartSearch, facts: ImmichFacts, me: str, p: Params) -> list[str]:
    """What Immich adds when the request is silent: a visibility, no trash, own locked assets."""
    out = []
    tree = dto.filter
    if dto.visibility is None and (tree is None or tree.visibility is None):
        out.append(f"{FILTER_COLUMNS['visibility']} = ANY({p.add(facts.default_visibility(), 'text[]')})")
    trash_asked = (
        dto.withDeleted
        or dto.trashedAfter is not None
        or dto.trashedBefore is not None
        or (tree is not None and tree.mentions("trashedAt"))
    )
    if not trash_asked:
        out.append(f"{FILTER_COLUMNS['trashedAt']} IS NULL")
    if facts.locked_own_only:
        out.append(f"({FILTER_COLUMNS['visibility']} <> 'locked' OR {FILTER_COLUMNS['ownerId']} = {me})")
    return out

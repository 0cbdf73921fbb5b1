"""Which catalog environments an export draws from: ids, a SQL condition, or a mix file's entries."""

from __future__ import annotations

from collections.abc import Sequence

from resyn.catalog import Catalog, CatalogError, EnvironmentRecord
from resyn.export.errors import ExportError
from resyn.export.mix import Mix, MixEntry

__all__ = ["select_environments", "select_for_mix"]


def select_environments(
    catalog: Catalog, env_ids: Sequence[str], where: str | None, status: str | None
) -> list[EnvironmentRecord]:
    """``env_ids`` (ids or unique prefixes, any status) plus the environments matching ``where``
    (and ``status`` unless it is ``None``); every environment of ``status`` when neither is
    given. Ordered by id, without repeats."""
    found: dict[str, EnvironmentRecord] = {}
    for env_id in env_ids:
        record = _by_id(catalog, env_id)
        found[record.env_id] = record
    if where is not None or not env_ids:
        for env_id in _matching(catalog, where, status):
            found.setdefault(env_id, catalog.environment(env_id))
    if not found:
        what = f"matching {where!r}" if where else "in the catalog"
        state = f" with status {status!r}" if status else ""
        raise ExportError(
            f"no environments {what}{state}: check `resyn catalog list` (--status any includes every status)"
        )
    return [found[key] for key in sorted(found)]


def select_for_mix(catalog: Catalog, mix: Mix, status: str | None) -> list[list[EnvironmentRecord]]:
    """The environments of each mix entry, in entry order; an entry that names a missing
    environment or matches none is an error that names it."""
    chosen: list[list[EnvironmentRecord]] = []
    for number, entry in enumerate(mix.entries, 1):
        chosen.append(_entry(catalog, entry, status, number))
    return chosen


def _entry(catalog: Catalog, entry: MixEntry, status: str | None, number: int) -> list[EnvironmentRecord]:
    if entry.env is not None:
        records = {}
        for env_id in entry.env:
            try:
                record = _by_id(catalog, env_id)
            except ExportError as exc:
                raise ExportError(f"mix entry {number}: {exc}") from None
            records[record.env_id] = record
        return [records[key] for key in sorted(records)]
    ids = _matching(catalog, entry.where, status)
    if not ids:
        raise ExportError(
            f"mix entry {number} ({entry.label()}) matches no environments: fix its condition or drop the entry"
        )
    return [catalog.environment(env_id) for env_id in ids]


def _by_id(catalog: Catalog, env_id: str) -> EnvironmentRecord:
    try:
        return catalog.environment(env_id)
    except CatalogError as exc:
        raise ExportError(str(exc)) from None


def _matching(catalog: Catalog, where: str | None, status: str | None) -> list[str]:
    conditions = []
    if status is not None:
        conditions.append("status = " + _literal(status))
    if where is not None:
        conditions.append(f"({where})")
    query = "SELECT env_id FROM environments"
    if conditions:
        query += " WHERE " + " AND ".join(conditions)
    query += " ORDER BY env_id"
    try:
        result = catalog.sql(query, limit=1_000_000)
    except CatalogError as exc:
        raise ExportError(f"--where {where!r}: {exc}") from None
    return [str(row[0]) for row in result.rows]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

"""Converting between pydantic records and DuckDB rows.

Two representation choices live here so that every table follows them:

* timestamps are stored as naive ``TIMESTAMP`` in UTC and come back as aware UTC datetimes (an
  aware datetime compares equal to the one stored, so records round-trip exactly);
* nested values are stored as JSON text. Python's ``json`` writes ``Infinity``/``NaN`` for
  non-finite floats (a check metric can be infinite) and DuckDB's JSON type accepts them, so
  floats round-trip too; pydantic's JSON mode would have turned them into ``null``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar, cast

from pydantic import BaseModel, TypeAdapter

M = TypeVar("M", bound=BaseModel)


def to_db_time(value: datetime) -> datetime:
    """An aware datetime in UTC without its tzinfo; a naive one is taken to be UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def from_db_time(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="python")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def encode(record: BaseModel, json_fields: Iterable[str] = ()) -> dict[str, Any]:
    """``record`` as column → value, ready for a parameterized INSERT."""
    as_json = set(json_fields)
    row: dict[str, Any] = {}
    for name, value in record.model_dump(mode="python").items():
        if name in as_json:
            row[name] = None if value is None else to_json(value)
        elif isinstance(value, datetime):
            row[name] = to_db_time(value)
        else:
            row[name] = value
    return row


def decode_value(value: Any, *, is_json: bool) -> Any:
    if value is None:
        return None
    if is_json:
        return json.loads(value) if isinstance(value, str) else value
    if isinstance(value, datetime):
        return from_db_time(value)
    return value


def _fields(
    model: type[BaseModel], columns: Sequence[str], json_fields: Iterable[str]
) -> list[tuple[int, str, bool]]:
    as_json = set(json_fields)
    return [(i, name, name in as_json) for i, name in enumerate(columns) if name in model.model_fields]


def decode(model: type[M], columns: Sequence[str], row: Sequence[Any], json_fields: Iterable[str] = ()) -> M:
    """The record of ``model`` in ``row``; columns that are not fields of ``model`` are ignored."""
    return decode_many(model, columns, [row], json_fields)[0]


@functools.cache
def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def decode_many(
    model: type[M], columns: Sequence[str], rows: Sequence[Sequence[Any]], json_fields: Iterable[str] = ()
) -> list[M]:
    """Every row as a ``model``, validated in one call: several times faster than row by row,
    which matters for a listing of 10,000 environments."""
    fields = _fields(model, columns, json_fields)
    data = [{name: decode_value(row[i], is_json=is_json) for i, name, is_json in fields} for row in rows]
    return cast(list[M], _list_adapter(model).validate_python(data))


def insert_sql(table: str, columns: Sequence[str], verb: str = "INSERT") -> str:
    """``INSERT [OR REPLACE|OR IGNORE] INTO table (columns) VALUES (?, …)``."""
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    return f"{verb} INTO {table} ({names}) VALUES ({marks})"

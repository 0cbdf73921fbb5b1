"""Writing an export's files: JSON Lines, Parquet (through DuckDB, which resyn already depends on,
rather than pyarrow), and file hashes for the manifest."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb

__all__ = ["file_sha256", "write_jsonl", "write_parquet"]


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write one compact JSON object per line (UTF-8, non-ASCII kept); returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
            count += 1
    return count


def write_parquet(path: Path, rows: Iterable[Mapping[str, Any]], columns: Mapping[str, str]) -> int:
    """Write rows to Parquet with an explicit DuckDB schema (``{"prompt": "STRUCT(role VARCHAR,
    content VARCHAR)[]", ...}``), so nested columns get the types trainers read (a chat list is
    a list of structs, not a JSON string) and a column that is ``null`` in every row still has
    its type. Rows go through a temporary JSONL file that DuckDB reads with that schema: one
    bulk conversion in C++ instead of a Python insert per row. Returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".jsonl", dir=path.parent)
    os.close(fd)
    try:
        count = write_jsonl(Path(tmp), ({k: row.get(k) for k in columns} for row in rows))
        spec = ", ".join(f"{_quote(name)}: {_quote(kind)}" for name, kind in columns.items())
        select = ", ".join(_ident(name) for name in columns)
        with duckdb.connect(":memory:") as conn:
            conn.execute("SET preserve_insertion_order = true")
            if count:
                source = (
                    f"read_json({_quote(tmp)}, format = 'newline_delimited', columns = {{{spec}}}, "
                    "maximum_object_size = 268435456)"
                )
            else:
                casts = ", ".join(f"NULL::{kind} AS {_ident(name)}" for name, kind in columns.items())
                source = f"(SELECT {casts} LIMIT 0)"
            conn.execute(
                f"COPY (SELECT {select} FROM {source}) TO {_quote(str(path))} "
                "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)"
            )
        return count
    finally:
        Path(tmp).unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'

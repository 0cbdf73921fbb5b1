"""``resyn export``: catalog environments → rendered instances → a self-contained trainer directory.

The steps, each in its own module: choose environments (:mod:`~resyn.export.select`, or a mix file,
:mod:`~resyn.export.mix`), plan rows and seeds per (environment, split, level)
(:mod:`~resyn.export.plan`), render them in the sandbox (:mod:`~resyn.export.render`), drop
instances already seen (so splits never share one) and draw more where a bucket fell short,
then let the format (:mod:`~resyn.export.formats`) write its files and reward entry point.

The directory is built beside ``--out`` under a temporary name and renamed into place at the end,
so a failed or interrupted export leaves nothing half-written and an existing directory (replaced
only with ``force``) intact until the new one is complete.
"""

from __future__ import annotations

import logging
import platform
import random
import re
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from resyn.catalog import Catalog, CatalogError, EnvironmentRecord
from resyn.export.errors import ExportError
from resyn.export.files import file_sha256
from resyn.export.formats import FORMATS, ExportContext, get_format
from resyn.export.mix import Mix, apportion, load_mix
from resyn.export.model import (
    ENVS_DIR,
    MANIFEST_NAME,
    SYSTEM_PROMPT,
    ExportedEnv,
    ExportManifest,
    ExportRow,
    SplitCount,
)
from resyn.export.plan import Allocation, Bucket, plan_buckets
from resyn.export.render import Rendered, Renderer
from resyn.export.select import select_environments, select_for_mix
from resyn.reward.models import EnvSpec
from resyn.sandbox.config import SandboxConfig

__all__ = ["ExportSettings", "export", "parse_levels", "parse_split"]

log = logging.getLogger(__name__)

_SPLIT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_DRAWS_PER_ROW = 4
"""A bucket stops drawing after this many seeds per row it wants (plus a few): an environment
with fewer distinct instances than asked yields what it has rather than looping forever."""


def parse_split(text: str) -> dict[str, float]:
    """``"train=0.95,test=0.05"`` → ``{"train": 0.95, "test": 0.05}``."""
    splits: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        name = name.strip()
        try:
            fraction = float(value) if sep else float("nan")
        except ValueError:
            fraction = float("nan")
        if not _SPLIT_NAME.match(name) or not fraction >= 0 or name in splits:
            raise ExportError(
                f"--split {text!r}: write NAME=FRACTION pairs with distinct lowercase names, "
                "e.g. train=0.95,test=0.05"
            )
        splits[name] = fraction
    return splits


def parse_levels(text: str) -> tuple[int, int]:
    """``"3"`` → ``(3, 3)``; ``"1-3"`` → ``(1, 3)``."""
    low, sep, high = text.strip().partition("-")
    try:
        levels = (int(low), int(high) if sep else int(low))
    except ValueError:
        raise ExportError(f"difficulty {text!r}: give a level like 3 or a range like 1-3") from None
    if levels[0] < 1 or levels[1] < levels[0]:
        raise ExportError(f"difficulty {text!r}: levels start at 1 and a range goes low-high, e.g. 1-3")
    return levels


class ExportSettings(BaseModel):
    """What to export. Strings are accepted where the CLI passes them (``split``, ``difficulty``,
    ``held_out_difficulty``, ``mix`` as a path)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    format: str
    out: Path
    env_ids: list[str] = Field(default_factory=list)
    """Environment ids or unique prefixes (any status)."""
    where: str | None = None
    """A SQL condition on the catalog's ``environments`` table."""
    status: str | None = "accepted"
    """Status of environments chosen by ``where`` or by default (``None``: any)."""
    n_per_env: int = Field(100, ge=1, le=10_000_000)
    """Rows per environment before the split (ignored with a mix, which sets a total)."""
    difficulty: tuple[int, int] | None = None
    """Levels to draw from (clipped to each environment's); ``None``: all of them."""
    mix: Mix | None = None
    mix_path: str | None = None
    seed: int = 0
    split: dict[str, float] = Field(default_factory=lambda: {"train": 1.0})
    held_out_difficulty: tuple[int, int] | None = None
    """Levels that appear only in the non-train splits."""
    force: bool = False
    """Replace a non-empty ``out``."""
    workers: int = Field(2, ge=1, le=64)
    """Sandboxed workers rendering in parallel (one per environment at a time)."""
    system_prompt: str = SYSTEM_PROMPT
    options: dict[str, str] = Field(default_factory=dict)
    """Format options (see each format's ``options``)."""

    @field_validator("split", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return parse_split(value) if isinstance(value, str) else value

    @field_validator("difficulty", "held_out_difficulty", mode="before")
    @classmethod
    def _levels(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_levels(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return (value, value)
        return value

    @model_validator(mode="after")
    def _check(self) -> ExportSettings:
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}: choose one of {', '.join(FORMATS)}")
        if self.mix is not None and self.difficulty is not None:
            raise ValueError("give --difficulty or --mix, not both (a mix sets levels per entry)")
        if self.mix is not None and (self.env_ids or self.where):
            raise ValueError("give --env/--where or --mix, not both (a mix chooses its environments)")
        if not sum(self.split.values()) > 0:
            raise ValueError("--split fractions sum to 0: give train a positive fraction")
        if self.held_out_difficulty is not None and len(self.split) < 2:
            raise ValueError(
                "--held-out-difficulty needs a second split to hold them, e.g. --split train=0.9,test=0.1"
            )
        return self

    @classmethod
    def build(cls, **values: Any) -> ExportSettings:
        """Settings from loose values (a mix path is loaded); :class:`ExportError` on bad input."""
        if isinstance(values.get("mix"), str | Path):
            values["mix_path"] = str(values["mix"])
            values["mix"] = load_mix(values["mix"])
        from pydantic import ValidationError

        try:
            return cls(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            raise ExportError(f"{field}: {message}" if field else message) from None


ProgressFn = Callable[[int, int], None]


def export(
    settings: ExportSettings,
    catalog_path: str | Path,
    *,
    command: str | None = None,
    sandbox: SandboxConfig | None = None,
    progress: ProgressFn | None = None,
) -> ExportManifest:
    """Make the export ``settings`` describe; returns its manifest. :class:`ExportError` (one
    line, nothing written) for anything the request gets wrong."""
    out = settings.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not settings.force:
        kind = "directory" if out.is_dir() else "file"
        raise ExportError(
            f"--out {out} is an existing non-empty {kind}: choose a new directory or pass --force"
        )
    format_ = get_format(settings.format)
    unknown = sorted(set(settings.options) - set(format_.options))
    if unknown:
        known = ", ".join(sorted(format_.options)) or "none"
        raise ExportError(
            f"--option {unknown[0]}: {settings.format} has no such option (its options: {known})"
        )
    try:
        with Catalog.open(catalog_path, read_only=True) as catalog:
            allocations, records = _allocate(catalog, settings)
    except CatalogError as exc:
        raise ExportError(str(exc)) from None
    buckets = plan_buckets(allocations, settings.split, settings.seed, settings.held_out_difficulty)
    specs = [EnvSpec.from_record(r) for r in records.values()]
    with Renderer(specs, workers=settings.workers, config=sandbox) as renderer:
        filled, shortfalls = _fill(buckets, renderer, progress)
    rows = _rows(buckets, filled, records, settings)
    if not any(rows.values()):
        raise ExportError(
            f"no instance could be rendered: {shortfalls[0] if shortfalls else 'nothing to draw'}"
        )

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the export is ordinary output
        # Only environments with rows: one whose every draw failed would be dead weight in envs/.
        used = {row.env_id for split_rows in rows.values() for row in split_rows}
        environments = _write_envs(staging, [r for r in records.values() if r.env_id in used])
        context = ExportContext(staging, rows, environments, settings.system_prompt, dict(settings.options))
        entry_point = format_.write(context)
        manifest = _manifest(
            settings, catalog_path, command, environments, rows, buckets, staging, entry_point
        )
        manifest = manifest.model_copy(update={"shortfalls": shortfalls})
        (staging / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
        _swap_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _allocate(
    catalog: Catalog, settings: ExportSettings
) -> tuple[list[Allocation], dict[str, EnvironmentRecord]]:
    records: dict[str, EnvironmentRecord] = {}
    allocations: list[Allocation] = []
    if settings.mix is not None:
        groups = select_for_mix(catalog, settings.mix, settings.status)
        entry_rows = apportion(settings.mix.total, [entry.weight for entry in settings.mix.entries])
        for entry, group, count in zip(settings.mix.entries, groups, entry_rows, strict=True):
            for record, rows in zip(group, apportion(count, [1.0] * len(group)), strict=True):
                levels = _levels(record, entry.difficulty, f"mix entry {entry.label()}")
                records[record.env_id] = record
                if rows:
                    allocations.append(Allocation(record.env_id, rows, levels))
        return _merge(allocations), records
    chosen = select_environments(catalog, settings.env_ids, settings.where, settings.status)
    skipped = []
    for record in chosen:
        try:
            levels = _levels(record, settings.difficulty, "--difficulty")
        except ExportError:
            skipped.append(record.env_id)
            continue
        records[record.env_id] = record
        allocations.append(Allocation(record.env_id, settings.n_per_env, levels))
    if not allocations:
        low, high = settings.difficulty or (0, 0)
        raise ExportError(
            f"--difficulty {low}-{high} is above every chosen environment's levels "
            f"({', '.join(skipped[:3])}{'…' if len(skipped) > 3 else ''}): choose a lower level"
        )
    for env_id in skipped:
        log.warning("skipped %s: it has no levels in --difficulty %s", env_id, settings.difficulty)
    return allocations, records


def _levels(record: EnvironmentRecord, wanted: tuple[int, int] | None, source: str) -> tuple[int, ...]:
    low, high = wanted or (1, record.max_difficulty)
    levels = tuple(range(max(1, low), min(high, record.max_difficulty) + 1))
    if not levels:
        raise ExportError(
            f"{source}: {record.env_id} has levels 1-{record.max_difficulty}, none in {low}-{high}: "
            "choose a range within them"
        )
    return levels


def _merge(allocations: list[Allocation]) -> list[Allocation]:
    """One environment named by two mix entries with the same levels gets one allocation."""
    merged: dict[tuple[str, tuple[int, ...]], int] = defaultdict(int)
    for allocation in allocations:
        merged[(allocation.env_id, allocation.levels)] += allocation.rows
    return [Allocation(env_id, rows, levels) for (env_id, levels), rows in merged.items()]


def _fill(
    buckets: list[Bucket], renderer: Renderer, progress: ProgressFn | None
) -> tuple[list[list[Rendered]], list[str]]:
    """Render draws until every bucket has its rows or has drawn ``MAX_DRAWS_PER_ROW`` seeds per
    row. Results are consumed in plan order (environment, then split in split order, then
    level), so which duplicate is dropped is deterministic."""
    filled: list[list[Rendered]] = [[] for _ in buckets]
    drawn = [0] * len(buckets)
    seen: set[tuple[str, str]] = set()
    rendered: Counter[str] = Counter()
    duplicates: Counter[str] = Counter()
    errors: dict[str, Counter[str]] = defaultdict(Counter)
    wanted = sum(bucket.wanted for bucket in buckets)
    while True:
        owners: list[int] = []
        draws = []
        for index, bucket in enumerate(buckets):
            need = bucket.wanted - len(filled[index])
            budget = bucket.wanted * MAX_DRAWS_PER_ROW + 8 - drawn[index]
            if need > 0 and budget > 0 and not _failing(errors[bucket.env_id], rendered[bucket.env_id]):
                count = min(need if drawn[index] == 0 else need + need // 2 + 1, budget)
                draws.extend(bucket.draw(count))
                owners.extend([index] * count)
                drawn[index] += count
        if not draws:
            break
        for owner, result in zip(owners, renderer.render(draws), strict=True):
            if result.error is not None:
                errors[result.draw.env_id][result.error.split("\n", 1)[0][:300]] += 1
                continue
            rendered[result.draw.env_id] += 1
            key = (result.draw.env_id, result.instance_json)
            if key in seen:
                duplicates[result.draw.env_id] += 1
                continue
            if len(filled[owner]) < buckets[owner].wanted:
                seen.add(key)
                filled[owner].append(result)
        if progress is not None:
            progress(sum(len(rows) for rows in filled), wanted)
    return filled, _shortfalls(buckets, filled, duplicates, errors)


def _failing(errors: Counter[str], rendered: int) -> bool:
    """Stop drawing from an environment whose module does not load, or whose draws fail more
    often than not (after a few): each failure that kills a worker costs a deadline and a
    respawn, and a passing environment's rare failure must not stop it."""
    failures = sum(errors.values())
    if any(message.startswith("load:") for message in errors):
        return True
    return failures >= 3 and failures > rendered


def _shortfalls(
    buckets: list[Bucket],
    filled: list[list[Rendered]],
    duplicates: Counter[str],
    errors: dict[str, Counter[str]],
) -> list[str]:
    notes = []
    short: dict[str, list[str]] = defaultdict(list)
    for bucket, rows in zip(buckets, filled, strict=True):
        if len(rows) < bucket.wanted:
            short[bucket.env_id].append(f"{bucket.split} level {bucket.level}: {len(rows)}/{bucket.wanted}")
    for env_id, parts in short.items():
        why = []
        if duplicates[env_id]:
            why.append(f"{duplicates[env_id]} draws repeated an instance already exported")
        if errors.get(env_id):
            message, count = errors[env_id].most_common(1)[0]
            why.append(f"{sum(errors[env_id].values())} draws failed ({count}× {message})")
        notes.append(f"{env_id}: {'; '.join(parts)} rows ({', '.join(why) or 'no more seeds drawn'})")
    for note in notes:
        log.warning("shortfall: %s", note)
    return notes


def _rows(
    buckets: list[Bucket],
    filled: list[list[Rendered]],
    records: dict[str, EnvironmentRecord],
    settings: ExportSettings,
) -> dict[str, list[ExportRow]]:
    """Rows per split, shuffled with the export seed so environments and levels interleave (a
    trainer that reads in order still sees a mixed stream)."""
    per_split: dict[str, list[Rendered]] = {name: [] for name in settings.split}
    for bucket, rendered in zip(buckets, filled, strict=True):
        per_split[bucket.split].extend(rendered)
    out: dict[str, list[ExportRow]] = {}
    for name, rendered in per_split.items():
        random.Random(f"resyn-export-order:{settings.seed}:{name}").shuffle(rendered)
        out[name] = [
            ExportRow(
                split=name,
                index=index,
                env_id=item.draw.env_id,
                env_name=records[item.draw.env_id].name,
                code_sha256=records[item.draw.env_id].code_sha256,
                seed=item.draw.seed,
                difficulty=item.draw.difficulty,
                question=item.question,
                instance_json=item.instance_json,
                solution=item.solution,
            )
            for index, item in enumerate(rendered)
        ]
    return out


def _write_envs(staging: Path, records: list[EnvironmentRecord]) -> list[ExportedEnv]:
    folder = staging / ENVS_DIR
    folder.mkdir()
    environments = []
    for record in sorted(records, key=lambda r: r.env_id):
        module = f"{ENVS_DIR}/{record.env_id}.py"
        (staging / module).write_text(record.code, encoding="utf-8")
        environments.append(
            ExportedEnv(
                env_id=record.env_id,
                name=record.name,
                keyword=record.keyword,
                code_sha256=record.code_sha256,
                max_difficulty=record.max_difficulty,
                has_solution=record.has_solution,
                module=module,
                description=record.description,
            )
        )
    return environments


def _manifest(
    settings: ExportSettings,
    catalog_path: str | Path,
    command: str | None,
    environments: list[ExportedEnv],
    rows: dict[str, list[ExportRow]],
    buckets: list[Bucket],
    staging: Path,
    entry_point: str | None,
) -> ExportManifest:
    import resyn

    requested: Counter[str] = Counter()
    for bucket in buckets:
        requested[bucket.split] += bucket.wanted
    per_env = {
        name: dict(sorted(Counter(row.env_id for row in split_rows).items()))
        for name, split_rows in rows.items()
    }
    files = {
        path.relative_to(staging).as_posix(): file_sha256(path)
        for path in sorted(staging.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
    return ExportManifest(
        format=settings.format,
        resyn_version=resyn.__version__,
        python_version=platform.python_version(),
        command=command or f"resyn.export.export({settings.format!r}, out={str(settings.out)!r})",
        catalog=str(Path(catalog_path).resolve()),
        seed=settings.seed,
        settings=settings.model_dump(mode="json", exclude={"out", "force", "workers"}),
        environments=environments,
        splits={name: SplitCount(rows=len(rows[name]), requested=requested[name]) for name in rows},
        rows_per_env=per_env,
        files=files,
        entry_point=entry_point,
    )


def _swap_into_place(staging: Path, out: Path) -> None:
    if out.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        retired.rmdir()
        out.rename(retired)
        staging.rename(out)
        if retired.is_dir():
            shutil.rmtree(retired, ignore_errors=True)
        else:
            retired.unlink(missing_ok=True)
    else:
        staging.rename(out)

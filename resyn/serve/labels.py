"""The OpenRLHF label of a row: what identifies the instance a completion is scored against.

OpenRLHF hands the reward server each row's ``--data.label_key`` value untouched, so the label
carries an item's identity as one JSON object (as text, which every dataset column type holds;
an object is accepted too):

.. code-block:: json

    {"env_id": "josephus-e2ea4593", "code_sha256": "e2ea4593…", "instance_json": "{\\"n\\": 7, …}"}
    {"env_id": "josephus-e2ea4593", "code_sha256": "e2ea4593…", "seed": 12, "difficulty": 3}

``instance_json`` is the instance as JSON *text* (the same string the generic exports' column
holds), so the label is exactly what a :class:`~resyn.reward.ScoreItem` takes. With both an
instance and ``(seed, difficulty)``, the instance is used and the seed is provenance.
``code_sha256`` pins the environment version: the server scores a label made by other code 0
(``code_mismatch``) rather than verify an instance against a verifier it was not made for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["Label", "LabelError", "label_for", "parse_label"]

#: Longest label text accepted: an instance is small data (the scorer's own cap on
#: ``instance_json`` is 4 M characters), and a label is parsed once per completion.
MAX_LABEL_CHARS = 4_100_000


class LabelError(ValueError):
    """A label that does not identify an instance; the message is one line."""


class Label(BaseModel):
    """A parsed label: the fields of a :class:`~resyn.reward.ScoreItem` that name the instance."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    env_id: str = Field(min_length=1, max_length=200)
    code_sha256: str | None = None
    instance_json: str | None = None
    seed: int | None = None
    difficulty: int | None = None

    @model_validator(mode="after")
    def _has_instance(self) -> Label:
        if self.instance_json is None and (self.seed is None or self.difficulty is None):
            raise ValueError("a label needs instance_json, or seed and difficulty")
        return self


def label_for(
    env_id: str,
    code_sha256: str,
    instance_json: str | Mapping[str, Any] | None = None,
    seed: int | None = None,
    difficulty: int | None = None,
) -> str:
    """The label text of one row, for an exporter to write under OpenRLHF's ``--data.label_key``.

    ``instance_json`` is the instance's JSON text (an object is serialised compactly); without
    it, ``seed`` and ``difficulty`` regenerate the instance. Raises :class:`LabelError` if the
    label would not identify an instance."""
    if isinstance(instance_json, Mapping):
        instance_json = json.dumps(instance_json, separators=(",", ":"), ensure_ascii=False)
    fields: dict[str, Any] = {"env_id": env_id, "code_sha256": code_sha256}
    if instance_json is not None:
        fields["instance_json"] = instance_json
    if seed is not None:
        fields["seed"] = seed
    if difficulty is not None:
        fields["difficulty"] = difficulty
    _validate(fields)
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def parse_label(text: str | Mapping[str, Any]) -> dict[str, Any]:
    """The item fields a label names (``env_id``, ``code_sha256``, and ``instance_json`` and/or
    ``seed`` and ``difficulty``; absent ones left out), ready to merge with a completion into a
    :class:`~resyn.reward.ScoreItem` dict. Takes the label text, or the object itself when a
    dataset stored it as one. Raises :class:`LabelError` with a one-line message."""
    if isinstance(text, str):
        if len(text) > MAX_LABEL_CHARS:
            raise LabelError(f"the label has {len(text)} characters; at most {MAX_LABEL_CHARS}")
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise LabelError(f"the label is not JSON: {str(exc)[:100]}") from None
    elif isinstance(text, Mapping):
        value = text
    else:
        raise LabelError(f"the label is {type(text).__name__}, not a JSON object or its text")
    if not isinstance(value, Mapping):
        raise LabelError("the label is not a JSON object (see resyn.serve.label_for)")
    fast = _exact(value)
    return fast if fast is not None else _validate(value).model_dump(exclude_none=True)


_OPTIONAL: tuple[tuple[str, type], ...] = (
    ("code_sha256", str),
    ("instance_json", str),
    ("seed", int),
    ("difficulty", int),
)


def _exact(value: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fields of a label whose values already have exactly :class:`Label`'s types, read
    without pydantic (a label is parsed per completion; this is a fifth of the cost), or None
    for pydantic to validate and explain."""
    env_id = value.get("env_id")
    if type(env_id) is not str or not 0 < len(env_id) <= 200:
        return None
    out: dict[str, Any] = {"env_id": env_id}
    for key, kind in _OPTIONAL:
        field = value.get(key)
        if field is not None:
            if type(field) is not kind:
                return None
            out[key] = field
    if "instance_json" not in out and ("seed" not in out or "difficulty" not in out):
        return None
    return out


def _validate(fields: Mapping[str, Any]) -> Label:
    try:
        return Label.model_validate(fields, strict=True)
    except ValidationError as exc:
        raise LabelError(f"invalid label: {first_error(exc, 'label')}"[:300]) from None


def first_error(exc: ValidationError, what: str) -> str:
    """``where: what is wrong`` of a validation error's first error, on one line."""
    errors = exc.errors(include_url=False)
    if not errors:
        return f"{what} does not validate"
    where = ".".join(str(part) for part in errors[0]["loc"]) or what
    return f"{where}: {errors[0]['msg']}".replace("\n", " ")

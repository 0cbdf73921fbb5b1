"""The ``openrlhf`` reward function with torch installed: tensors of one float per query, which
merge the way OpenRLHF merges per-batch results (``torch.cat`` per key, then split per sample
group). OpenRLHF itself needs GPUs (DeepSpeed, vLLM, Ray) and is not installed here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from resyn.export.model import ground_truth
from tests.trainers.exports import render, write_export

pytestmark = pytest.mark.trainers


def test_reward_func_returns_tensors(tmp_path: Path) -> None:
    import torch

    rendered = render(("modular_power",), {"train": 4})
    out, _ = write_export(rendered, tmp_path / "export", "openrlhf")
    spec = importlib.util.spec_from_file_location("openrlhf_export_reward", out / "reward.py")
    assert spec is not None and spec.loader is not None
    reward = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reward)
    rows = rendered.rows["train"]
    prompts = [f"<|user|> {r.prompt_text()} <|assistant|>" for r in rows]
    responses = [f"<answer>{r.solution}</answer><|end|>" if i < 2 else "no idea" for i, r in enumerate(rows)]
    labels = [ground_truth(r) for r in rows]
    infos = [
        reward.reward_func([p + r for p, r in zip(prompts, responses, strict=True)][s], prompts[s], labels[s])
        for s in (slice(0, 3), slice(3, 4))
    ]
    for info in infos:
        assert info["rewards"].dtype == torch.float32 and info["scores"].dtype == torch.float32
    rewards = torch.cat([info["rewards"] for info in infos])
    assert rewards.tolist() == [1.0, 1.0, 0.0, 0.0]
    logs = {key: torch.cat([info["extra_logs"][key] for info in infos]) for key in infos[0]["extra_logs"]}
    assert logs["resyn_no_answer"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert logs["resyn_error"].tolist() == [0.0] * 4

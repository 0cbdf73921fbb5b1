"""A real TRL ``GRPOTrainer`` trains two steps, offline, on a ``trl`` export with its reward
function: a tiny random Llama and a word-level tokenizer built here, generation restricted to
the gold answers of two rows (so about half the completions are right), and the reward module
imported from the export directory. The reward function must be called with the dataset's
columns, and what it returned must be what the trainer logged."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from resyn.export import runtime
from tests.trainers import tiny
from tests.trainers.exports import render, write_export

pytestmark = pytest.mark.trainers


def load_reward(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("trl_export_reward", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_grpo_trainer_two_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, asynchronous: bool) -> None:
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    rendered = render(("sort_numbers", "linear_equation"), {"train": 1, "test": 1})
    out, entry = write_export(rendered, tmp_path / "export", "trl")
    assert entry == "reward.py:resyn_reward"
    reward = load_reward(out / "reward.py")
    function = reward.resyn_reward_async if asynchronous else reward.resyn_reward

    train = datasets.load_dataset(
        "parquet", data_files={"train": str(out / "data" / "train.parquet")}, cache_dir=str(tmp_path / "hf")
    )["train"]
    assert len(train) == 2 and isinstance(train[0]["prompt"], list)
    answers = [f"<answer>{solution}</answer>" for solution in train["solution"]]
    tokenizer = tiny.tokenizer(answers)
    allowed = {tokenizer.convert_tokens_to_ids(a) for a in answers} | {tokenizer.eos_token_id}
    suppress = [i for i in range(len(tokenizer)) if i not in allowed]
    model = tiny.model(len(tokenizer))

    # Spy on what reached the scorer (the items the reward function built from TRL's columns).
    calls: list[tuple[list[dict[str, Any]], list[float]]] = []
    real_detailed, real_ascores = runtime.detailed, runtime.ascores

    def detailed(export_dir: Any, batch: list[dict[str, Any]]) -> Any:
        results = real_detailed(export_dir, batch)
        calls.append((batch, [r.score for r in results]))
        return results

    async def ascores(export_dir: Any, batch: list[dict[str, Any]]) -> list[float]:
        scores = await real_ascores(export_dir, batch)
        calls.append((batch, scores))
        return scores

    monkeypatch.setattr(runtime, "detailed", detailed)
    monkeypatch.setattr(runtime, "ascores", ascores)

    args = GRPOConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=3,
        learning_rate=1e-3,
        beta=0.0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=0,
        temperature=1.0,
        generation_kwargs={"suppress_tokens": suppress},
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=model, reward_funcs=[function], args=args, train_dataset=train, processing_class=tokenizer
    )
    trainer.train()

    assert trainer.state.global_step == 2
    assert len(calls) == 2  # one generation batch per step
    by_instance = {row["instance_json"]: row["solution"] for row in train}
    for batch, scores in calls:
        assert len(batch) == 4
        for item, score in zip(batch, scores, strict=True):
            assert set(item) == {"env_id", "completion", "code_sha256", "instance_json"}
            assert item["env_id"] in {"sort_numbers", "linear_equation"}
            assert len(item["code_sha256"]) == 64
            completion = item["completion"]
            assert isinstance(completion, list) and completion[-1]["role"] == "assistant"
            # Right iff the last answer the policy gave is this row's gold answer.
            text = completion[-1]["content"]
            last = (
                text.rsplit("<answer>", 1)[-1].split("</answer>", 1)[0].strip()
                if "<answer>" in text
                else None
            )
            assert score == (1.0 if last == by_instance[item["instance_json"]] else 0.0), text
    logged = [entry for entry in trainer.state.log_history if f"rewards/{function.__name__}/mean" in entry]
    assert len(logged) == 2
    for entry, (_, scores) in zip(logged, calls, strict=True):
        assert entry[f"rewards/{function.__name__}/mean"] == pytest.approx(sum(scores) / len(scores))
        assert entry["reward"] == pytest.approx(sum(scores) / len(scores))
        if not asynchronous:
            assert entry["resyn/errors"] == 0.0  # logged through TRL's log_metric
    every = [score for _, scores in calls for score in scores]
    assert 0.0 in every and 1.0 in every  # the policy was sometimes right: real advantages

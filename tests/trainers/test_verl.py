"""A ``verl`` export loaded by verl's own code: its ``RLHFDataset`` reads the Parquet with a chat
template, and its reward loading (``load_reward_manager`` with ``custom_reward_function``, the
reward-loop naive manager; and the batch manager with ``compute_score_batch``) scores decoded
responses through the export's ``reward.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from resyn.export.model import SYSTEM_PROMPT
from tests.trainers import tiny
from tests.trainers.exports import render, write_export

pytestmark = pytest.mark.trainers

WRONG = "<answer>no</answer>"


def proto(tokenizer: Any, items: list[dict[str, Any]], responses: list[str]) -> Any:
    """A rollout batch as verl's reward managers receive it: left-padded prompts, right-padded
    responses, one attention mask over both, and the rows' non-tensor columns."""
    import numpy as np
    import torch
    from verl import DataProto

    prompts = [
        tokenizer.apply_chat_template(i["raw_prompt"], add_generation_prompt=True, tokenize=False)
        for i in items
    ]
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    # Each response is one token of the tiny vocabulary (an answer with spaces in it), then EOS.
    response_ids = [[tokenizer.convert_tokens_to_ids(r), tokenizer.eos_token_id] for r in responses]
    width_p, width_r = max(map(len, prompt_ids)), max(map(len, response_ids))
    pad = tokenizer.pad_token_id
    batch_prompts = torch.tensor([[pad] * (width_p - len(p)) + p for p in prompt_ids])
    batch_responses = torch.tensor([r + [pad] * (width_r - len(r)) for r in response_ids])
    mask = torch.tensor(
        [
            [0] * (width_p - len(p)) + [1] * (len(p) + len(r)) + [0] * (width_r - len(r))
            for p, r in zip(prompt_ids, response_ids, strict=True)
        ]
    )
    return DataProto.from_dict(
        tensors={"prompts": batch_prompts, "responses": batch_responses, "attention_mask": mask},
        non_tensors={
            key: np.array([item[key] for item in items], dtype=object)
            for key in ("data_source", "reward_model", "extra_info")
        },
    )


def test_verl_dataset_and_reward_managers(tmp_path: Path) -> None:
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import load_reward_manager
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.workers.reward_manager.batch import BatchRewardManager

    rendered = render(("sort_numbers", "modular_power"), {"train": 3, "test": 1})
    out, entry = write_export(rendered, tmp_path / "export", "verl")
    assert entry == "reward.py:compute_score"
    rows = rendered.rows["train"]
    golds = [f"<answer>{r.solution}</answer>" for r in rows]
    tokenizer = tiny.tokenizer([*golds, WRONG])

    dataset = RLHFDataset(
        data_files=[str(out / "data" / "train.parquet")],
        tokenizer=tokenizer,
        config=OmegaConf.create(
            {
                "prompt_key": "prompt",
                "max_prompt_length": 2048,
                "filter_overlong_prompts": True,
                "filter_overlong_prompts_workers": 1,
                "cache_dir": str(tmp_path / "verl-cache"),
            }
        ),
    )
    assert len(dataset) == len(rows)
    items = [dataset[i] for i in range(len(dataset))]
    for item, row in zip(items, rows, strict=True):
        assert item["raw_prompt"] == [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": row.question},
        ]
        assert item["data_source"] == f"resyn/{row.env_id}"
        assert item["reward_model"]["style"] == "rule"
        assert item["index"] == row.index and item["extra_info"]["seed"] == row.seed

    # The reward loop's naive manager, loaded the way verl's trainer loads it.
    config = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {"path": str(out / "reward.py"), "name": "compute_score"},
                "reward_manager": {"name": "naive", "source": "register"},
            }
        }
    )
    manager = load_reward_manager(config, tokenizer)
    responses = [gold if i % 2 == 0 else WRONG for i, gold in enumerate(golds)]
    expected = [1.0 if i % 2 == 0 else 0.0 for i in range(len(rows))]

    async def naive() -> list[float]:
        scores = []
        for i in range(len(items)):
            result = await manager.run_single(proto(tokenizer, [items[i]], [responses[i]]))
            scores.append(result["reward_score"])
        return scores

    # The manager runs on the event loop it was made on (verl's reward-loop worker loop).
    assert manager.loop.run_until_complete(naive()) == expected
    # An async compute_score is awaited by the same manager.
    config.reward.custom_reward_function.name = "compute_score_async"
    manager = load_reward_manager(config, tokenizer)
    assert (
        manager.loop.run_until_complete(manager.run_single(proto(tokenizer, items[:1], golds[:1])))[
            "reward_score"
        ]
        == 1.0
    )

    # The batch manager with compute_score_batch: one call for the whole batch.
    from verl.utils.import_utils import load_extern_object

    batch_fn = load_extern_object(module_path=str(out / "reward.py"), object_name="compute_score_batch")
    batch = BatchRewardManager(tokenizer=tokenizer, num_examine=0, compute_score=batch_fn)
    rewards = batch(proto(tokenizer, items, responses))
    assert rewards.sum(dim=-1).tolist() == expected

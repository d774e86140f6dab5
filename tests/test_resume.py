"""Kill and resume: BC and DEPO training SIGKILLed mid-way in a subprocess, resumed in a new one.

The resumed run (config `resume=True`, same output_dir) must end where a run that never stopped
ends: the same final loss, the same weights (1e-6), and the same greedy trajectories on BabyAI tasks.
Everything a worker needs (tokenizer, initial model, datasets) is written once by the test, so the
processes differ only in being killed or not.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from depo.agent.react import AgentTurn, format_turn
from depo.envs.babyai import BabyAISuite
from depo.labeling.labels import DEPO_DATASET_SCHEMA

REPO = Path(__file__).resolve().parents[1]
TOTAL_STEPS = 9
SAVE_EVERY = 3
KILL_AFTER_CHECKPOINT = 3  # mid-epoch: the data order and optimizer state must both resume
LEVELS = ["GoToLocal", "PickupLoc"]


def episode_messages(suite, env, task, policy: str, rng: random.Random, max_turns: int = 3) -> tuple[list[dict], int]:
    messages = [{"role": "system", "content": suite.system_prompt}, {"role": "user", "content": env.reset(task)}]
    turns = 0
    while not env.done and turns < max_turns:
        turn = env.expert_turn() if policy == "expert" else AgentTurn("no idea, trying something", rng.choice(env.available_actions()))
        result = env.step(turn.action)
        messages.append({"role": "assistant", "content": format_turn(turn)})
        turns += 1
        if not result.done and turns < max_turns:
            messages.append({"role": "user", "content": result.observation})
    return messages, turns


def training_frame(tokenizer) -> pl.DataFrame:
    """Expert openings (desirable) and random-action openings (undesirable) of BabyAI train tasks."""
    suite = BabyAISuite(levels=LEVELS, max_steps=20)
    rng = random.Random(0)
    records = []
    for i, task in enumerate(suite.make_tasks("train", 8, seed=0)):
        for policy, label in (("expert", True), ("random", False)):
            messages, steps = episode_messages(suite, suite.make_env(), task, policy, rng)
            total = sum(len(tokenizer(m["content"])["input_ids"]) for m in messages if m["role"] == "assistant")
            records.append({
                "env": "babyai", "task_id": task.task_id, "split": "train", "trajectory_id": f"{policy}/{i}",
                "source": policy, "messages": messages, "label": label, "reward": float(label), "steps": steps,
                "total_tokens": total, "avg_tokens_per_step": total / steps, "data_fraction_rank": len(records),
            })
    return pl.DataFrame(records, schema=DEPO_DATASET_SCHEMA)


def train_worker(kind: str, inputs: str, output_dir: str, pause_after: int) -> None:
    """Run in a subprocess: train_bc / train_depo from the saved inputs; with `pause_after` > 0, stop after
    that checkpoint is written (printing `SAVED <step>`) and wait there to be killed."""
    import transformers

    from depo.policy.loading import load_policy
    from depo.training import BCConfig, DEPOConfig, train_bc, train_depo

    torch.set_num_threads(1)  # other work shares the machine; also keeps the kernels deterministic

    class PauseAfterSave(transformers.TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == pause_after:
                print(f"SAVED {state.global_step}", flush=True)
                signal.pause()  # SIGKILL arrives here: later steps and the final save never happen

    if pause_after:
        original_train = transformers.Trainer.train

        def train_with_pause(self, *args, **kwargs):
            self.add_callback(PauseAfterSave())
            return original_train(self, *args, **kwargs)

        transformers.Trainer.train = train_with_pause

    shared = dict(output_dir="unused", max_steps=TOTAL_STEPS, save_strategy="steps", save_steps=SAVE_EVERY,
                  logging_steps=1, use_cpu=True, report_to="none", disable_tqdm=True, seed=0, resume=True,
                  dataloader_num_workers=0, max_length=None)
    policy = load_policy(Path(inputs) / "initial_model")
    frame = pl.read_parquet(Path(inputs) / "frame.parquet")
    if kind == "bc":
        config = BCConfig(finetuning="full", learning_rate=3e-3, per_device_train_batch_size=2, **shared)
        outcome = train_bc(policy, frame.filter(pl.col("label")), config, output_dir)
    else:
        config = DEPOConfig(learning_rate=5e-3, per_device_train_batch_size=4, lora_r=4, lora_alpha=8, **shared)
        outcome = train_depo(policy, frame, config, output_dir)
    outcome.policy.model.save_pretrained(Path(output_dir) / "final")
    outcome.policy.tokenizer.save_pretrained(Path(output_dir) / "final")
    (Path(output_dir) / "history.json").write_text(json.dumps(outcome.log_history))


def start_worker(kind: str, inputs: Path, output_dir: Path, pause_after: int = 0) -> subprocess.Popen:
    code = f"from tests.test_resume import train_worker; train_worker({kind!r}, {str(inputs)!r}, {str(output_dir)!r}, {pause_after})"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> None:
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]


def kill_after_checkpoint(process: subprocess.Popen) -> None:
    """Wait for the worker's `SAVED` line, then SIGKILL it (no cleanup, no final save)."""
    for line in process.stdout:  # the Trainer also prints its logs here
        if line.startswith("SAVED"):
            break
    else:
        process.wait(timeout=30)
        raise AssertionError(f"worker ended before its checkpoint: {process.stderr.read()[-3000:]}")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    from depo.policy.tiny import build_tiny_model
    from depo.policy.tokenizer import train_tokenizer

    folder = tmp_path_factory.mktemp("resume_inputs")
    suite = BabyAISuite(levels=LEVELS)
    rng = random.Random(1)
    texts = [suite.system_prompt]
    for task in suite.make_tasks("train", 8, seed=0):
        messages, _ = episode_messages(suite, suite.make_env(), task, "expert", rng, max_turns=6)
        texts += [m["content"] for m in messages[1:]]
    tokenizer = train_tokenizer(texts, vocab_size=400)
    model = build_tiny_model(tokenizer, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0)
    model.save_pretrained(folder / "initial_model")
    tokenizer.save_pretrained(folder / "initial_model")
    training_frame(tokenizer).write_parquet(folder / "frame.parquet")
    return folder


def greedy_trajectories(model_dir: Path) -> pl.DataFrame:
    from depo.policy.base import GenerationConfig
    from depo.policy.loading import load_policy
    from depo.policy.local import LocalGenerator
    from depo.policy.rollouts import rollout

    suite = BabyAISuite(levels=LEVELS, max_steps=3)
    generator = LocalGenerator(load_policy(model_dir))
    frame = rollout(generator, suite, suite.make_tasks("test", 3, seed=0), "check", GenerationConfig(max_new_tokens=24),
                    batch_size=3, progress=False)
    return frame.select("task_id", "step", "observation", "thought", "action", "reward", "valid_action")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bc", "depo"])
def test_training_killed_mid_way_resumes_to_the_uninterrupted_result(kind, inputs, tmp_path):
    uninterrupted_dir, killed_dir = tmp_path / "uninterrupted", tmp_path / "killed"
    # One thread each, side by side: the run that never stops, and the one killed after a checkpoint.
    uninterrupted = start_worker(kind, inputs, uninterrupted_dir)
    killed = start_worker(kind, inputs, killed_dir, pause_after=KILL_AFTER_CHECKPOINT)
    kill_after_checkpoint(killed)
    assert sorted(p.name for p in killed_dir.glob("checkpoint-*")) == [f"checkpoint-{KILL_AFTER_CHECKPOINT}"]
    assert not (killed_dir / "final").exists()
    finish(start_worker(kind, inputs, killed_dir))  # a new process, resume=True: continues from checkpoint-3
    finish(uninterrupted)

    expected_history = json.loads((uninterrupted_dir / "history.json").read_text())
    resumed_history = json.loads((killed_dir / "history.json").read_text())
    expected_losses = [entry["loss"] for entry in expected_history if "loss" in entry]
    resumed_losses = [entry["loss"] for entry in resumed_history if "loss" in entry]
    assert len(expected_losses) == TOTAL_STEPS
    # The resumed history is the checkpoint's first 3 steps plus the 6 the new process ran.
    assert resumed_losses == pytest.approx(expected_losses, abs=1e-6)
    assert resumed_history[-1]["step"] == TOTAL_STEPS

    expected = load_file(uninterrupted_dir / "final" / "model.safetensors")
    resumed = load_file(killed_dir / "final" / "model.safetensors")
    assert expected.keys() == resumed.keys()
    for name, value in resumed.items():
        torch.testing.assert_close(value, expected[name], atol=1e-6, rtol=0, msg=name)
    initial = load_file(inputs / "initial_model" / "model.safetensors")
    assert any(not torch.equal(initial[name], value) for name, value in resumed.items())  # training did train

    # "Evaluation metrics equal": greedy rollouts of the two final models take identical trajectories.
    expected_rollout, resumed_rollout = greedy_trajectories(uninterrupted_dir / "final"), greedy_trajectories(killed_dir / "final")
    assert expected_rollout.height > 0
    assert expected_rollout.equals(resumed_rollout)

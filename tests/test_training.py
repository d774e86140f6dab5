"""BC and DEPO training on a tiny model: masking, learning, TRL equivalence, resuming."""
from __future__ import annotations

import copy
import logging
import random
import shutil

import polars as pl
import pytest
import torch
from peft import PeftModel
from transformers.trainer_utils import get_last_checkpoint

from depo.labeling.labels import DEPO_DATASET_SCHEMA
from depo.policy.attention import attention_implementation
from depo.policy.base import PolicyModel
from depo.policy.lora import add_lora, adapter_disabled
from depo.policy.tiny import build_tiny_model
from depo.policy.tokenizer import END, train_tokenizer
from depo.training import BCConfig, DEPOConfig, DEPOTrainer, sequence_logps, train_bc, train_depo
from depo.training.data import (
    DEPOCollator,
    SFTCollator,
    add_mismatched_pairs,
    pad_right,
    render_ids,
    shared_prefix_length,
    tokenize_conversation,
    tokenize_frame,
)
from depo.training.attention import PACKED_ATTENTION
from depo.training.bc import BCTrainer
from depo.training.depo import check_label_balance, paired_logps

SYSTEM_PROMPT = "You walk a grid. Answer with a Thought and an Action."
DIRECTIONS = ("north", "south", "east", "west")
OBJECTS = ("key", "ball", "box", "door")
COLORS = ("red", "green", "blue", "yellow")
QUIET = dict(use_cpu=True, dataloader_num_workers=0, report_to="none", disable_tqdm=True, logging_steps=1,
             save_strategy="no", seed=0)


def observation(rng: random.Random) -> tuple[str, str]:
    direction = rng.choice(DIRECTIONS)
    return f"You see a {rng.choice(COLORS)} {rng.choice(OBJECTS)} to the {direction}.", direction


def good_turn(direction: str) -> str:
    return f"Thought: the goal is {direction}. Action: go {direction}"


def bad_turn(rng: random.Random) -> str:
    return f"Thought: I am lost, maybe wait. Action: turn {rng.choice(['left', 'right'])} and wait"


def conversation(rng: random.Random, desirable: bool, steps: int) -> list[dict]:
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for _ in range(steps):
        text, direction = observation(rng)
        messages.append({"role": "user", "content": text})
        messages.append({"role": "assistant", "content": good_turn(direction) if desirable else bad_turn(rng)})
    return messages


def depo_frame(tokenizer, conversations: list[list[dict]], labels: list[bool]) -> pl.DataFrame:
    """A depo_dataset frame (DEPO_DATASET_SCHEMA) with token counts from `tokenizer`."""
    records = []
    for i, (messages, label) in enumerate(zip(conversations, labels, strict=True)):
        turns = [m["content"] for m in messages if m["role"] == "assistant"]
        total = sum(len(tokenizer(turn)["input_ids"]) for turn in turns)
        records.append({
            "env": "grid", "task_id": f"task-{i}", "split": "train", "trajectory_id": f"t{i}", "source": "synthetic",
            "messages": messages, "label": label, "reward": 1.0 if label else 0.0, "steps": len(turns),
            "total_tokens": total, "avg_tokens_per_step": total / len(turns), "data_fraction_rank": i,
        })
    return pl.DataFrame(records, schema=DEPO_DATASET_SCHEMA)


@pytest.fixture(scope="module")
def tokenizer():
    rng = random.Random(0)
    texts = [SYSTEM_PROMPT]
    for _ in range(300):
        text, direction = observation(rng)
        texts += [text, good_turn(direction), bad_turn(rng)]
    return train_tokenizer(texts, vocab_size=500)


def tiny_model(tokenizer, seed: int = 0):
    return build_tiny_model(tokenizer, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=seed)


def unpacked_logps(model, rows: list[dict], prefix: str, pad_token_id: int) -> torch.Tensor:
    """`sequence_logps` of the planned rows' matched (prefix "") or KL ("kl_") sequences, each in its own row."""
    ids = pad_right([row[f"{prefix}input_ids"] for row in rows], pad_token_id)
    attention = pad_right([[1] * len(row[f"{prefix}input_ids"]) for row in rows], 0)
    assistant = pad_right([row[f"{prefix}assistant_mask"] for row in rows], 0)
    return sequence_logps(model, ids, attention, assistant)


@pytest.fixture(scope="module")
def mixed_frame(tokenizer) -> pl.DataFrame:
    """Short successful and longer failing multi-turn trajectories, labels interleaved."""
    rng = random.Random(1)
    labels = [i % 2 == 0 for i in range(16)]
    conversations = [conversation(rng, label, rng.randint(1, 2) if label else rng.randint(2, 3)) for label in labels]
    return depo_frame(tokenizer, conversations, labels)


def perturb_adapter(model):
    """A non-zero LoRA adapter: with a fresh one every implied reward is 0 and the tests would prove nothing."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    return model

def test_assistant_mask_covers_exactly_the_assistant_turns(tokenizer):
    messages = conversation(random.Random(2), desirable=True, steps=3)
    tokenized = tokenize_conversation(messages, tokenizer)
    runs, current = [], []
    for token, masked in zip(tokenized.input_ids, tokenized.assistant_mask):
        if masked:
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    decoded = [tokenizer.decode(run, skip_special_tokens=False) for run in runs]
    assert decoded == [m["content"] + END for m in messages if m["role"] == "assistant"]
    # the prompt x ends with the first generation prompt
    assert tokenized.assistant_mask[tokenized.prompt_length - 1] == 0 and tokenized.assistant_mask[
        tokenized.prompt_length] == 1


def test_bc_lowers_the_sft_loss(tokenizer, mixed_frame, tmp_path):
    torch.manual_seed(0)
    bc_frame = mixed_frame.filter(pl.col("label"))
    rows, _ = tokenize_frame(bc_frame, tokenizer, max_length=None)
    batch = SFTCollator(tokenizer.pad_token_id)(rows)

    def sft_loss(model) -> float:
        with torch.no_grad():
            return model.eval()(**batch).loss.item()

    policy = PolicyModel(tiny_model(tokenizer), tokenizer)
    before = sft_loss(policy.model)
    config = BCConfig(output_dir=str(tmp_path), finetuning="full", learning_rate=3e-3, num_train_epochs=4,
                      per_device_train_batch_size=4, **QUIET)
    outcome = train_bc(policy, bc_frame, config, tmp_path)
    after = sft_loss(outcome.policy.model)
    assert after < before - 0.5
    losses = [entry["loss"] for entry in outcome.log_history if "loss" in entry]
    assert losses[-1] < losses[0]


def test_bc_loss_needs_no_padding_mask_on_right_padded_rows(tokenizer, mixed_frame, tmp_path):
    """BCTrainer drops the padding mask: on right-padded rows of different lengths the loss is the masked one."""
    rows, _ = tokenize_frame(mixed_frame, tokenizer, max_length=None)
    batch = SFTCollator(tokenizer.pad_token_id)(rows[:4])
    assert (batch["attention_mask"] == 0).any()  # some rows are padded
    torch.manual_seed(0)
    model = tiny_model(tokenizer).eval()
    trainer = BCTrainer(model, BCConfig(output_dir=str(tmp_path), **QUIET), rows, tokenizer)
    with torch.no_grad():
        masked = model(**batch).loss
        seen = []
        hook = model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(set(kwargs)), with_kwargs=True)
        unmasked = trainer.compute_loss(model, batch)
        hook.remove()
    assert "attention_mask" not in seen[0]
    torch.testing.assert_close(unmasked, masked, atol=1e-6, rtol=1e-6)


def test_depo_raises_desirable_rewards(tokenizer, mixed_frame, tmp_path):
    torch.manual_seed(0)
    config = DEPOConfig(output_dir=str(tmp_path), learning_rate=1e-2, num_train_epochs=4,
                        per_device_train_batch_size=4, beta=0.5, alpha_tokens=1.0, alpha_steps=1.0, lora_r=4,
                        lora_alpha=8, **QUIET)
    bc_model = tiny_model(tokenizer)
    reference = copy.deepcopy(bc_model)
    outcome = train_depo(PolicyModel(bc_model, tokenizer), mixed_frame, config, tmp_path)

    steps = [entry for entry in outcome.log_history if "loss" in entry]
    assert len(steps) == 16  # 16 rows / 4 per batch × 4 epochs
    expected_keys = {"loss", "learning_rate", "kl", "rewards/desirable", "rewards/undesirable", "bonus/mean",
                     "train_tokens_per_second"}
    assert expected_keys <= set(steps[0])
    # a fresh adapter (B = 0) is the reference: step 1 has zero implied rewards
    assert steps[0]["rewards/desirable"] == 0.0 and steps[0]["rewards/undesirable"] == 0.0
    last_epoch = steps[-4:]
    assert sum(step["rewards/desirable"] for step in last_epoch) > 0 > sum(
        step["rewards/undesirable"] for step in last_epoch)
    assert steps[-1]["loss"] < steps[0]["loss"]

    # the merged model against the BC model, on every trajectory
    trained = outcome.policy.model
    assert not isinstance(trained, PeftModel)
    rows, _ = tokenize_frame(mixed_frame, tokenizer, None, columns=("label",))
    ids = pad_right([row["input_ids"] for row in rows], tokenizer.pad_token_id)
    attention = pad_right([[1] * len(row["input_ids"]) for row in rows], 0)
    assistant = pad_right([row["assistant_mask"] for row in rows], 0)
    desirable = torch.tensor([row["label"] for row in rows])
    with torch.no_grad():
        log_ratio = sequence_logps(trained, ids, attention, assistant) - sequence_logps(reference, ids, attention,
                                                                                        assistant)
    assert log_ratio[desirable].mean() > 0 > log_ratio[~desirable].mean()


def test_zero_bonus_equals_trl_kto(tokenizer, tmp_path):
    """One step of trl.KTOTrainer and of DEPOTrainer (α1 = α2 = 0) on the same batch give the same loss and kl.

    Made exact by: single-assistant-turn trajectories (TRL supervises the whole completion, we supervise
    assistant tokens: identical here, asserted below); TRL's rows fed in our planned batch order, so its
    rotation builds the same mismatched pairs; the same LoRA policy with a non-zero adapter on both sides
    (a fresh adapter would make every log-ratio 0 and the test vacuous); TRL's reference a separate copy of
    the base weights (`ref_model`), ours the adapter disabled; precomputed reference log-probs on both;
    fp32 everywhere (TRL's bf16 and gradient checkpointing defaults switched off).
    """
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    rng = random.Random(3)
    labels = [True, False, True, False]
    conversations = [conversation(rng, label, steps=1) for label in labels]
    frame = depo_frame(tokenizer, conversations, labels)
    base = tiny_model(tokenizer, seed=1)
    torch.manual_seed(0)
    policy = add_lora(copy.deepcopy(base), r=4, alpha=8)
    torch.manual_seed(5)
    perturb_adapter(policy)
    trl_policy = copy.deepcopy(policy)
    shared = dict(QUIET, per_device_train_batch_size=4, max_steps=1, learning_rate=1e-3, beta=0.2)

    rows, _ = tokenize_frame(frame, tokenizer, None, columns=("label", "steps", "avg_tokens_per_step"))
    depo_trainer = DEPOTrainer(policy, DEPOConfig(output_dir=str(tmp_path / "depo"), alpha_tokens=0.0,
                                                  alpha_steps=0.0, **shared), rows, tokenizer)
    order = [row["row_index"] for row in depo_trainer.train_dataset]
    depo_trainer.train()

    dataset = Dataset.from_list([
        {"prompt": conversations[i][:-1], "completion": conversations[i][-1:], "label": labels[i]} for i in order
    ])
    trl_trainer = KTOTrainer(
        model=trl_policy, ref_model=copy.deepcopy(base), processing_class=tokenizer, train_dataset=dataset,
        args=KTOConfig(output_dir=str(tmp_path / "trl"), precompute_ref_log_probs=True, bf16=False,
                       gradient_checkpointing=False, max_length=None, **shared),
    )
    for ours, theirs in zip(depo_trainer.train_dataset, trl_trainer.train_dataset, strict=True):
        assert ours["input_ids"] == theirs["prompt_ids"] + theirs["completion_ids"]
        assert ours["kl_input_ids"] == theirs["prompt_ids"] + theirs["KL_completion_ids"]
        assert ours["assistant_mask"] == [0] * len(theirs["prompt_ids"]) + [1] * len(theirs["completion_ids"])
        assert ours["reference_logps"] == pytest.approx(theirs["ref_logps"], abs=1e-5)
    trl_trainer.train()

    depo_step, trl_step = depo_trainer.state.log_history[0], trl_trainer.state.log_history[0]
    assert depo_step["kl"] > 0  # the reference point is in play, not clamped
    assert depo_step["loss"] == pytest.approx(trl_step["loss"], abs=1e-5)
    assert depo_step["kl"] == pytest.approx(trl_step["kl"], abs=1e-5)
    assert depo_step["grad_norm"] == pytest.approx(trl_step["grad_norm"], rel=1e-4)  # same gradient, none via z0
    assert depo_step["rewards/desirable"] * 0.2 == pytest.approx(trl_step["rewards/chosen"], abs=1e-5)


def test_training_logs_reach_mlflow_as_each_step_ends(tokenizer, mixed_frame, tmp_path):
    """The nodes' `log_step` writes every Trainer log to the active MLflow run while training runs: after
    step k the run holds k points of bc/loss, at global steps 1..k; the run summary comes last, without a step."""
    import mlflow

    from depo.tracking import training_step_logger

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(client.tracking_uri)
    try:
        # Its own experiment: an earlier in-process `kedro run` leaves another store's experiment selected.
        with mlflow.start_run(experiment_id=client.create_experiment("training")) as run:
            to_mlflow = training_step_logger("bc")
            points_after_each_log = []

            def log_step(entry, step):
                to_mlflow(entry, step)
                points_after_each_log.append(len(client.get_metric_history(run.info.run_id, "bc/loss")))

            config = BCConfig(output_dir=str(tmp_path), finetuning="full", num_train_epochs=1,
                              per_device_train_batch_size=4, **QUIET)
            outcome = train_bc(PolicyModel(tiny_model(tokenizer), tokenizer), mixed_frame.filter(pl.col("label")),
                               config, tmp_path, log_step=log_step)
    finally:
        mlflow.set_tracking_uri(previous_uri)
    steps = [entry["step"] for entry in outcome.log_history if "loss" in entry]
    assert steps == [1, 2]  # 8 desirable rows, 4 per batch
    assert points_after_each_log == [1, 2, 2]
    history = client.get_metric_history(run.info.run_id, "bc/loss")
    assert sorted(point.step for point in history) == steps
    logged = client.get_run(run.info.run_id).data.metrics
    assert {"bc/learning_rate", "bc/grad_norm", "bc/train_runtime"} <= set(logged) and "bc/epoch" not in logged


def test_resumed_run_matches_an_uninterrupted_one(tokenizer, mixed_frame, tmp_path):
    """A run stopped after its step-4 checkpoint (later checkpoints removed, as after a kill) and resumed by a
    fresh trainer ends with the same loss and weights as a run that never stopped; step 4 is mid-epoch."""
    config = DEPOConfig(output_dir="unused", learning_rate=5e-3, max_steps=7, per_device_train_batch_size=4,
                        data_fraction=0.75,  # 12 rows: 3 batches per epoch
                        lora_r=4, lora_alpha=8, resume=True, **dict(QUIET, save_strategy="steps", save_steps=4))

    def run(output_dir, log_step=None):
        torch.manual_seed(0)
        return train_depo(PolicyModel(tiny_model(tokenizer), tokenizer), mixed_frame, config, output_dir, log_step)

    uninterrupted = run(tmp_path / "uninterrupted")
    first = run(tmp_path / "killed")
    checkpoints = sorted((tmp_path / "killed").glob("checkpoint-*"))
    assert [path.name for path in checkpoints] == ["checkpoint-4", "checkpoint-7"]
    shutil.rmtree(checkpoints[-1])
    assert get_last_checkpoint(str(tmp_path / "killed")).endswith("checkpoint-4")
    handed_out = []
    resumed = run(tmp_path / "killed", lambda entry, step: handed_out.append((step, "loss" in entry)))
    # the 4 restored steps first, then the 3 trained ones and the run summary: each step once
    assert handed_out == [(step, True) for step in range(1, 8)] + [(7, False)]

    final_loss = [entry["loss"] for entry in uninterrupted.log_history if "loss" in entry][-1]
    resumed_losses = [entry["loss"] for entry in resumed.log_history if "loss" in entry]
    assert len(resumed_losses) == 7
    assert resumed_losses[-1] == pytest.approx(final_loss, abs=1e-6)
    assert [entry["loss"] for entry in first.log_history if "loss" in entry][-1] == pytest.approx(final_loss, abs=1e-6)
    expected = uninterrupted.policy.model.state_dict()
    for name, value in resumed.policy.model.state_dict().items():
        torch.testing.assert_close(value, expected[name], atol=1e-6, rtol=0)


@pytest.mark.parametrize("per_row_from", [0, 10**6], ids=["row_by_row", "one_masked_call"])
@pytest.mark.parametrize(("attention", "checkpointing"), [("sdpa", False), ("eager", False), ("sdpa", True)])
def test_packed_rows_score_each_sequence_as_if_alone(tokenizer, mixed_frame, tmp_path, attention, checkpointing,
                                                     per_row_from, monkeypatch):
    """prompt | completion | partner completion in one row, the system prompt shared by the whole batch, gives
    the log-probs of the two sequences run separately, with the same gradient on the matched one; multi-turn
    rows, so completions hold observations too. Gradient checkpointing runs without the shared prefix. Both
    attention strategies (two causal attentions per row, one masked call) are checked."""
    monkeypatch.setattr("depo.training.depo.PER_ROW_ATTENTION_FROM", per_row_from)
    rows, _ = tokenize_frame(mixed_frame, tokenizer, None, columns=("label", "steps", "avg_tokens_per_step"))
    torch.manual_seed(0)
    base = tiny_model(tokenizer)
    base.set_attn_implementation(attention)
    if checkpointing:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = perturb_adapter(add_lora(base, r=4, alpha=8))
    trainer = DEPOTrainer(model, DEPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, **QUIET),
                          rows, tokenizer)
    planned = trainer.train_dataset[:4]
    batch = trainer.data_collator(planned)
    system_prompt = len(render_ids(tokenizer, mixed_frame["messages"][0][:1]))
    assert shared_prefix_length(batch["input_ids"], batch["segment_ids"]) >= system_prompt
    model.train()
    lora_parameters = [p for name, p in model.named_parameters() if "lora_" in name]
    if checkpointing:  # backward would recompute the layers with the model's own attention
        with pytest.raises(RuntimeError, match="PACKED_ATTENTION"):
            paired_logps(model, batch)
    with attention_implementation(model, PACKED_ATTENTION):  # as DEPOTrainer.train holds it
        matched, mismatched = paired_logps(model, batch)
        packed_grad = torch.autograd.grad(matched.sum(), lora_parameters, retain_graph=True)

    # each sequence alone, with the model's own attention implementation
    expected_matched = unpacked_logps(model, planned, "", tokenizer.pad_token_id)
    # sums of ~100 log-probs: equal up to fp32 rounding
    torch.testing.assert_close(matched, expected_matched, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(mismatched, unpacked_logps(model, planned, "kl_", tokenizer.pad_token_id), atol=1e-5,
                               rtol=1e-6)
    alone_grad = torch.autograd.grad(expected_matched.sum(), lora_parameters)
    for packed, separate in zip(packed_grad, alone_grad):
        torch.testing.assert_close(packed, separate, atol=1e-5, rtol=1e-4)
    # the whole prompt is shared: each packed row is the matched sequence plus the partner's completion only
    for row, length in zip(planned, batch["attention_mask"].sum(1).tolist()):
        assert length == len(row["input_ids"]) + len(row["kl_input_ids"]) - row["prompt_length"]


def test_the_shared_prefix_stops_before_the_last_prompt_token(tokenizer):
    """Rows with one and the same prompt share all of it but its last token, which scores each row's
    completion; rows whose prompts differ share up to the first difference."""
    messages = conversation(random.Random(4), desirable=True, steps=1)
    other = conversation(random.Random(5), desirable=False, steps=1)
    rows, _ = tokenize_frame(depo_frame(tokenizer, [messages, messages], [True, True]), tokenizer, None,
                             columns=("label", "steps", "avg_tokens_per_step"))
    paired = add_mismatched_pairs(rows, [[0, 1]], None)
    batch = DEPOCollator(tokenizer.pad_token_id)(paired)
    assert shared_prefix_length(batch["input_ids"], batch["segment_ids"]) == rows[0]["prompt_length"] - 1
    rows, _ = tokenize_frame(depo_frame(tokenizer, [messages, other], [True, False]), tokenizer, None,
                             columns=("label", "steps", "avg_tokens_per_step"))
    batch = DEPOCollator(tokenizer.pad_token_id)(add_mismatched_pairs(rows, [[0, 1]], None))
    first, second = rows[0]["input_ids"], rows[1]["input_ids"]
    common = next(i for i, (a, b) in enumerate(zip(first, second)) if a != b)
    assert 0 < common < rows[0]["prompt_length"] - 1
    assert shared_prefix_length(batch["input_ids"], batch["segment_ids"]) == common


def test_depo_trainer_needs_a_lora_model(tokenizer, mixed_frame, tmp_path):
    rows, _ = tokenize_frame(mixed_frame, tokenizer, None, columns=("label", "steps", "avg_tokens_per_step"))
    config = DEPOConfig(output_dir=str(tmp_path), **QUIET)
    with pytest.raises(TypeError, match="LoRA"):
        DEPOTrainer(tiny_model(tokenizer), config, rows, tokenizer)


def test_reference_logps_come_from_the_adapter_disabled(tokenizer, mixed_frame, tmp_path):
    rows, _ = tokenize_frame(mixed_frame, tokenizer, None, columns=("label", "steps", "avg_tokens_per_step"))
    torch.manual_seed(0)
    model = perturb_adapter(add_lora(tiny_model(tokenizer), r=4, alpha=8))
    trainer = DEPOTrainer(model, DEPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, **QUIET),
                          rows, tokenizer)
    planned = trainer.train_dataset[4:8]
    batch = trainer.data_collator(planned)
    with torch.no_grad(), adapter_disabled(model):
        reference = unpacked_logps(model, planned, "kl_", tokenizer.pad_token_id)
    torch.testing.assert_close(batch["reference_kl_logps"], reference, atol=1e-5, rtol=0)
    with torch.no_grad():
        policy = unpacked_logps(model, planned, "kl_", tokenizer.pad_token_id)
    assert not torch.allclose(policy, reference, atol=1e-3)
    # successful trajectories are the short ones here, yet every planned batch holds both labels
    planned = trainer.train_dataset
    assert len(planned) == 16 and all(row["kl_partner_row_index"] != row["row_index"] for row in planned)
    for start in range(0, 16, 4):
        assert sorted(row["label"] for row in planned[start : start + 4]) == [False, False, True, True]


def test_label_balance_warns_outside_ktos_range(caplog):
    labels = [True] * 201 + [False] * 232
    with caplog.at_level(logging.WARNING, logger="depo.training.depo"):
        assert check_label_balance(labels, 1.5, 1.0) == pytest.approx(1.5 * 201 / 232)
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="depo.training.depo"):
        assert check_label_balance(labels, 1.0, 1.0) == pytest.approx(201 / 232)
    assert "desirable_weight" in caplog.text and "0.87" in caplog.text
    assert check_label_balance([True, True], 1.0, 1.0) is None  # no undesirable rows: nothing to balance

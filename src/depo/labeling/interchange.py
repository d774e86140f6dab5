"""The released DEPO data's JSON format, as LLaMA-Factory's KTO stage reads it.

A file is a JSON list of objects: `messages` ([{role, content}], system / user / assistant, ending on
an assistant turn), `label` (bool, the KTO tag), and DEPO's extra fields `steps`,
`avg_tokens_per_step`, `total_tokens`. Export also writes this project's provenance fields (env,
task_id, ...) so a round trip is lossless; import fills what a foreign file lacks and names the
file and record index of anything malformed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from depo.labeling.labels import DEPO_DATASET_SCHEMA, assign_fraction_rank
from depo.policy.tokens import count_text_tokens

ROLES = ("system", "user", "assistant")
_OPTIONAL_TEXT = ("env", "task_id", "split")


def kto_records(depo_dataset: pl.DataFrame) -> list[dict[str, Any]]:
    """`depo_dataset` (in `DEPO_DATASET_SCHEMA`) as the KTO JSON list's records."""
    missing = [c for c in DEPO_DATASET_SCHEMA if c not in depo_dataset.columns]
    if missing:
        raise ValueError(f"depo_dataset is missing column(s) {missing} of the DEPO dataset schema")
    return depo_dataset.select(list(DEPO_DATASET_SCHEMA)).to_dicts()


def export_kto_json(depo_dataset: pl.DataFrame, path: str | Path) -> Path:
    """Write `depo_dataset` as a KTO JSON list; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(kto_records(depo_dataset), ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _check_messages(messages: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: 'messages' must be a non-empty list")
    for j, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise ValueError(f"{where}: messages[{j}] must be an object with exactly 'role' and 'content'")
        if message["role"] not in ROLES:
            raise ValueError(f"{where}: messages[{j}] has role {message['role']!r}; expected one of {ROLES}")
        if not isinstance(message["content"], str):
            raise ValueError(f"{where}: messages[{j}] content must be a string")
    if messages[-1]["role"] != "assistant":
        raise ValueError(f"{where}: 'messages' must end with an assistant turn")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _number(record: dict, key: str, kind: type, where: str) -> Any:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise ValueError(f"{where}: {key!r} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    return kind(value)


def _row(record: Any, index: int, path: Path, tokenizer) -> dict[str, Any]:
    where = f"{path} record {index}"
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected an object, got {type(record).__name__}")
    for key in ("messages", "label"):
        if key not in record:
            raise ValueError(f"{where}: missing required field {key!r}")
    messages = _check_messages(record["messages"], where)
    if not isinstance(record["label"], bool):
        raise ValueError(f"{where}: 'label' must be true or false, got {record['label']!r}")
    assistant = [m["content"] for m in messages if m["role"] == "assistant"]
    steps = _number(record, "steps", int, where)
    steps = len(assistant) if steps is None else steps
    if steps < 1:
        raise ValueError(f"{where}: 'steps' must be positive, got {steps}")
    total = _number(record, "total_tokens", int, where)
    average = _number(record, "avg_tokens_per_step", float, where)
    if total is None and average is None and tokenizer is not None:
        # An assistant turn's content is the formatted turn, whose tokens are the step's gen_tokens.
        total = sum(count_text_tokens(tokenizer, content) for content in assistant)
    if total is None and average is not None:
        total = round(average * steps)
    if average is None and total is not None:
        average = total / steps
    row = {
        "messages": messages,
        "label": record["label"],
        "steps": steps,
        "total_tokens": total,
        "avg_tokens_per_step": average,
        "reward": _number(record, "reward", float, where),
        "data_fraction_rank": _number(record, "data_fraction_rank", int, where),
        "trajectory_id": record.get("trajectory_id") or f"{path.name}/{index}",
        "source": record.get("source") or f"file:{path.name}",
    }
    for key in _OPTIONAL_TEXT:
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{where}: {key!r} must be a string, got {value!r}")
        row[key] = value
    return row


def import_kto_json(path: str | Path, tokenizer=None, seed: int = 0) -> pl.DataFrame:
    """Read a KTO JSON file into `DEPO_DATASET_SCHEMA`.

    Missing `steps` = the number of assistant turns; missing token counts are derived from each
    other, or counted with `tokenizer` when both are absent (else null); missing provenance gets
    the file name; `data_fraction_rank` is reassigned with `seed` unless every record has one.
    """
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of records, got {type(records).__name__}")
    rows = [_row(record, index, path, tokenizer) for index, record in enumerate(records)]
    dataset = pl.DataFrame(rows, schema=DEPO_DATASET_SCHEMA)
    if dataset["data_fraction_rank"].null_count() > 0:
        dataset = assign_fraction_rank(dataset.drop("data_fraction_rank"), seed)
    return dataset.select(list(DEPO_DATASET_SCHEMA))

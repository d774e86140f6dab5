"""Math problems as one table: readers for the real GSM8K, MATH and SimulEq files and the hub.

Every source yields rows in `PROBLEM_SCHEMA`; `gold` is the dataset's raw gold field exactly as
`grade(benchmark, model_output, gold)` takes it, `answer` the final answer extracted from it.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from depo.envs.base import check_split
from depo.envs.math.grading import BENCHMARKS, gold_answer

PROBLEM_SCHEMA: dict[str, pl.DataType] = {
    "benchmark": pl.String,  # one of BENCHMARKS
    "problem_id": pl.String,  # "<benchmark>/<split>/<index>", stable for a given file or seed
    "split": pl.String,  # "train" | "test"
    "question": pl.String,
    "gold": pl.String,  # GSM8K answer text, MATH solution text, SimulEq answer string
    "answer": pl.String,  # the final answer inside `gold`
    "solution": pl.String,  # worked solution text when the source has one (null for real SimulEq)
    "subject": pl.String,  # MATH subject (`type` in MATH, `subject` in MATH-500); null otherwise
    "level": pl.Int64,  # MATH difficulty 1-5; null otherwise
    "source": pl.String,  # "generated" | "file:<name>" | "hub:<id>"
}

_BOXED = re.compile(r"\\(?:boxed|fbox)")
_GSM8K_FINAL = re.compile(r"####\s*\S")
_LEVEL = re.compile(r"^(?:Level\s*)?([1-5])$")


def check_benchmark(benchmark: str) -> None:
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown math benchmark {benchmark!r}; expected one of {BENCHMARKS}")


def _text_field(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {name!r} must be a non-empty string, got {value!r}")
    return value


def _level(value: Any) -> int | None:
    """MATH's `"Level 3"` or MATH-500's `3`; None for MATH's few `"Level ?"` records."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 1 <= value <= 5 else None
    match = _LEVEL.match(value.strip()) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def problem_row(benchmark: str, record: dict[str, Any], index: int, split: str, source: str) -> dict[str, Any]:
    """One dataset record as a `PROBLEM_SCHEMA` row; ValueError saying what is wrong with it."""
    check_benchmark(benchmark)
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    subject = level = None
    if benchmark == "gsm8k":
        question, gold = _text_field(record, "question"), _text_field(record, "answer")
        if not _GSM8K_FINAL.search(gold):
            raise ValueError("field 'answer' must end with '#### <number>'")
        solution = gold
    elif benchmark == "math":
        question, gold = _text_field(record, "problem"), _text_field(record, "solution")
        if not _BOXED.search(gold):
            raise ValueError("field 'solution' has no \\boxed{...} final answer")
        solution = gold
        subject = record.get("subject") or record.get("type")
        level = _level(record.get("level"))
    else:
        question, gold = _text_field(record, "question"), _text_field(record, "answer").strip()
        solution = None
    # MATH-500 also carries the extracted answer; elsewhere it comes out of the gold field.
    answer = record.get("answer") if benchmark == "math" and record.get("answer") else gold_answer(benchmark, gold)
    return {
        "benchmark": benchmark,
        "problem_id": f"{benchmark}/{split}/{index}",
        "split": split,
        "question": question.strip(),
        "gold": gold,
        "answer": str(answer),
        "solution": solution,
        "subject": subject,
        "level": level,
        "source": source,
    }


def problems_frame(rows: Iterable[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=PROBLEM_SCHEMA)


def load_jsonl(benchmark: str, path: str | Path, split: str = "test") -> pl.DataFrame:
    """A benchmark's JSONL file (GSM8K, MATH / MATH-500 or SimulEq format) as a problems table.

    `split` labels the rows (the real files are test sets). Blank lines are skipped; any other line
    that is not a valid record raises ValueError naming the file, the line number and the problem,
    so a broken file never yields a partial table.
    """
    check_benchmark(benchmark)
    check_split(split)
    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: line {line_no}: not valid JSON ({error.msg})") from None
            try:
                rows.append(problem_row(benchmark, record, len(rows), split, f"file:{path.name}"))
            except ValueError as error:
                raise ValueError(f"{path}: line {line_no}: not a {benchmark} record: {error}") from None
    if not rows:
        raise ValueError(f"{path}: no {benchmark} problems in the file")
    return problems_frame(rows)


@dataclass(frozen=True)
class HubSource:
    """Where `datasets.load_dataset` finds a benchmark, and which splits it has."""

    path: str
    config: str | None = None
    data_files: dict[str, str] | None = None
    splits: tuple[str, ...] = ("test",)

    @property
    def label(self) -> str:
        return self.data_files["test"] if self.data_files else self.path


# SimulEq (Koncel-Kedziorski et al., 2016) has no canonical hub dataset; its 451-question test set
# as used by math evaluations (MAmmoTH) is a JSON file of {question, answer} records on GitHub.
# This address could not be checked offline; `load_jsonl` reads a local copy.
SIMULEQ_URL = "https://raw.githubusercontent.com/TIGER-AI-Lab/MAmmoTH/main/math_eval/dataset/simuleq/simuleq.json"

HUB_SOURCES: dict[str, HubSource] = {
    "gsm8k": HubSource("openai/gsm8k", config="main", splits=("train", "test")),
    "math": HubSource("HuggingFaceH4/MATH-500"),
    "simuleq": HubSource("json", data_files={"test": SIMULEQ_URL}),
}


def load_from_hub(benchmark: str, split: str = "test") -> pl.DataFrame:
    """A benchmark downloaded with `datasets` (the optional `hub` extra); needs network access.

    gsm8k: `openai/gsm8k` config `main` (train, test); math: `HuggingFaceH4/MATH-500` (test);
    simuleq: `SIMULEQ_URL` through the `json` builder (test).
    """
    check_benchmark(benchmark)
    hub = HUB_SOURCES[benchmark]
    if split not in hub.splits:
        raise ValueError(f"split {split!r} of {benchmark} is not on the hub; available: {hub.splits}")
    try:
        import datasets
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            "load_from_hub needs the `datasets` package: pip install -e .[hub]"
        ) from error
    records = datasets.load_dataset(hub.path, hub.config, data_files=hub.data_files, split=split)
    source = f"hub:{hub.label}"
    rows = []
    for index, record in enumerate(records):
        try:
            rows.append(problem_row(benchmark, record, index, split, source))
        except ValueError as error:
            raise ValueError(f"{source} {split} record {index}: not a {benchmark} record: {error}") from None
    return problems_frame(rows)

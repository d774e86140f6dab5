"""Answer extraction and grading for GSM8K, MATH and SimulEq.

`grade(benchmark, model_output, gold)` takes the dataset's raw gold field (GSM8K `answer` ending in
`#### n`, MATH `solution` with `\\boxed{…}`, SimulEq `answer` number string), pulls the model's final
answer out of free text with an ordered list of extractors, and compares the two: normalised string
equality first (cheap and covers most correct answers), then plain-number comparison, then
`math-verify` for LaTeX equivalence. It never raises on model output: anything odd grades False.

math-verify bounds its sympy work with `signal.alarm`, which only works in the main thread; off the
main thread the timeouts are switched off (math-verify then logs a one-time warning) and only the
length cap on answers bounds the work.
"""
from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from math_verify.errors import TimeoutException

BENCHMARKS = ("gsm8k", "math", "simuleq")
EXTRACTORS = ("hashes", "boxed", "answer_is", "expression", "last_latex", "short_line", "last_number")
# Longer candidates are not answers but prose; it also bounds sympy's work when no timeout is possible.
MAX_ANSWER_CHARS = 300
MATH_VERIFY_TIMEOUT_S = 3


@dataclass(frozen=True)
class GradingRules:
    """How one benchmark's outputs are read and compared."""

    extractors: tuple[str, ...]
    # SimulEq golds are rounded (`583.3333`); a prediction within half a unit of the gold's last
    # decimal, or within this relative error, matches. Integer golds always need an exact value.
    rounded_gold_rel_tol: float | None = None


RULES: dict[str, GradingRules] = {
    "gsm8k": GradingRules(extractors=("hashes", "boxed", "answer_is", "expression", "last_number")),
    "math": GradingRules(
        extractors=("boxed", "answer_is", "hashes", "expression", "last_latex", "short_line", "last_number")
    ),
    "simuleq": GradingRules(
        extractors=("hashes", "boxed", "answer_is", "expression", "last_number"), rounded_gold_rel_tol=1e-4
    ),
}

_HASHES = re.compile(r"####\s*([^\n]*)")
_ANSWER_IS = re.compile(r"(?:final\s+answer|answer)\s*(?:is|:|=)\s*:?\s*([^\n]+)", re.IGNORECASE)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*")
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|[-+]?\.\d+")
_LATEX_SPAN = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\[(.+?)\\\]|\\\((.+?)\\\)", re.DOTALL)
_TEXT_GROUP = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}")
_LATEX_COMMAND = re.compile(r"\\[a-zA-Z]+")
_WORD = re.compile(r"[a-zA-Z]{4,}")
# Spacing and sizing macros that never change a value.
_LATEX_NOISE = re.compile(r"\\left|\\right|\\[,;:! ]|\\displaystyle|\$|\s")
_UNIT_TAIL = re.compile(r"\s*(?:[a-zA-Z][a-zA-Z.\s]*)?$")


def _last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{…}` / `\\fbox{…}` (braces balanced), or of `\\boxed 5`."""
    starts = list(_BOXED.finditer(text))
    for match in reversed(starts):
        i = match.end()
        if i < len(text) and text[i] == "{":
            depth = 0
            for j in range(i, len(text)):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[i + 1 : j].strip()
            continue  # unbalanced: try an earlier box
        bare = re.match(r"[^\s$]+", text[i:])
        if bare:
            return bare.group(0)
    return None


def _strip_sentence_end(candidate: str) -> str:
    candidate = candidate.strip()
    while candidate and candidate[-1] in ".;":
        candidate = candidate[:-1].rstrip()
    return candidate


def _is_expression(text: str) -> bool:
    """A short single line that is an answer, not prose: no plain word of 4+ letters (units aside)."""
    if "\n" in text.strip() or not text.strip():
        return False
    if _plain_number(text) is not None:
        return True
    bare = _LATEX_COMMAND.sub(" ", _TEXT_GROUP.sub(" ", text))
    return _WORD.search(bare) is None


def _extract_one(method: str, text: str) -> str | None:
    if method == "hashes":
        found = _HASHES.findall(text)
        return _strip_sentence_end(found[-1]) if found else None
    if method == "boxed":
        return _last_boxed(text)
    if method == "answer_is":
        found = _ANSWER_IS.findall(text)
        if not found:
            return None
        candidate = _strip_sentence_end(found[-1])
        return _last_boxed(candidate) or candidate
    if method == "expression":
        return _strip_sentence_end(text) if _is_expression(text) else None
    if method == "last_latex":
        spans = _LATEX_SPAN.findall(text)
        return next((part for part in spans[-1] if part), None) if spans else None
    if method == "short_line":
        stripped = text.strip()
        return _strip_sentence_end(stripped) if stripped and "\n" not in stripped else None
    if method == "last_number":
        numbers = _NUMBER.findall(text)
        return numbers[-1] if numbers else None
    raise ValueError(f"unknown answer extractor {method!r}; expected one of {EXTRACTORS}")


def extract_answer(text: str, extractors: Sequence[str]) -> str | None:
    """The first non-empty candidate the extractors find, in order; None when none applies."""
    for method in extractors:
        candidate = _extract_one(method, text)
        if candidate and len(candidate) <= MAX_ANSWER_CHARS:
            return candidate
    return None


def _check_benchmark(benchmark: str) -> GradingRules:
    if benchmark not in RULES:
        raise ValueError(f"unknown math benchmark {benchmark!r}; expected one of {BENCHMARKS}")
    return RULES[benchmark]


def gold_answer(benchmark: str, gold: str) -> str:
    """The final answer inside a dataset's raw gold field; ValueError when it has none."""
    _check_benchmark(benchmark)
    if not isinstance(gold, str) or not gold.strip():
        raise ValueError(f"{benchmark} gold must be a non-empty string, got {gold!r}")
    if benchmark == "math":
        # A MATH `solution` boxes its answer; an already-extracted answer (MATH-500 `answer`) has no box.
        answer = _last_boxed(gold)
        return answer if answer else gold.strip()
    # GSM8K golds and generated worked solutions end in `#### n`; SimulEq golds are bare numbers.
    found = _HASHES.findall(gold)
    answer = _strip_sentence_end(found[-1]) if found else gold.strip()
    if _plain_number(answer) is None:
        raise ValueError(f"{benchmark} gold has no numeric final answer: {gold[-80:]!r}")
    return answer


def _normalise(answer: str) -> str:
    answer = _TEXT_GROUP.sub(r"\1", answer)
    answer = _LATEX_NOISE.sub("", answer)
    answer = answer.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("{,}", ",")
    answer = re.sub(r"\^\{?\\circ\}?", "", answer)
    return _strip_sentence_end(answer)


def _plain_number(answer: str) -> float | None:
    """The value of an answer that is one number, allowing `$`, thousands commas, `%` and a unit."""
    cleaned = _TEXT_GROUP.sub(r" \1", answer)
    cleaned = re.sub(r"\\\$|\$|\\%|%|\\!|\{,\}", lambda m: "," if m.group(0) == "{,}" else "", cleaned)
    cleaned = _strip_sentence_end(cleaned.strip())
    match = _PLAIN_NUMBER.match(cleaned)
    if match is None or not _UNIT_TAIL.fullmatch(cleaned[match.end() :]):
        return None
    return float(match.group(0).replace(",", "").replace("+", ""))


def _decimals(answer: str) -> int:
    """Decimal places of the number written in a plain-number answer (`583.3333` -> 4)."""
    number = _PLAIN_NUMBER.search(answer.replace("$", ""))
    parts = number.group(0).split(".", 1) if number else []
    return len(parts[1]) if len(parts) == 2 else 0


def _numbers_match(predicted: float, gold: float, gold_text: str, rules: GradingRules) -> bool:
    decimals = _decimals(gold_text)
    if rules.rounded_gold_rel_tol is not None and decimals > 0:
        tolerance = max(0.5 * 10**-decimals, rules.rounded_gold_rel_tol * abs(gold))
        return abs(predicted - gold) <= tolerance
    return math.isclose(predicted, gold, rel_tol=1e-9, abs_tol=1e-9)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@lru_cache(maxsize=8192)
def _parse_latex(answer: str, with_timeout: bool) -> tuple:
    parsed = parse(
        f"${answer.replace('$', '')}$",
        extraction_config=(LatexExtractionConfig(), ExprExtractionConfig()),
        parsing_timeout=MATH_VERIFY_TIMEOUT_S if with_timeout else None,
    )
    return tuple(parsed)


def _sympy_value(parsed: tuple) -> float | None:
    if not parsed or isinstance(parsed[0], str) or not getattr(parsed[0], "is_number", False):
        return None
    value = complex(parsed[0].evalf())
    return value.real if value.imag == 0 else None


def answers_match(benchmark: str, candidate: str, gold: str) -> bool:
    """Whether an extracted answer equals a gold final answer (both as strings)."""
    rules = _check_benchmark(benchmark)
    if _normalise(candidate) == _normalise(gold):
        return True
    gold_value = _plain_number(gold)
    if gold_value is not None:
        predicted = _plain_number(candidate)
        if predicted is not None:
            return _numbers_match(predicted, gold_value, gold, rules)
    with_timeout = _in_main_thread()
    parsed_gold = _parse_latex(gold, with_timeout)
    parsed_candidate = _parse_latex(candidate, with_timeout)
    if gold_value is not None:
        predicted = _sympy_value(parsed_candidate)
        if predicted is not None:
            return _numbers_match(predicted, gold_value, gold, rules)
    if not parsed_gold or not parsed_candidate:
        return False
    return verify(
        list(parsed_gold),
        list(parsed_candidate),
        timeout_seconds=MATH_VERIFY_TIMEOUT_S if with_timeout else None,
    )


def grade(benchmark: str, model_output: str, gold: str, extractors: Sequence[str] | None = None) -> bool:
    """True when the final answer in `model_output` equals the final answer in the raw `gold` field.

    `extractors` overrides the benchmark's ordered answer extractors (see `EXTRACTORS`). An unknown
    benchmark or a gold field without a final answer raises ValueError; model output never raises.
    """
    rules = _check_benchmark(benchmark)
    reference = gold_answer(benchmark, gold)
    extractors = tuple(extractors or rules.extractors)
    unknown = [name for name in extractors if name not in EXTRACTORS]
    if unknown:
        raise ValueError(f"unknown answer extractors {unknown}; expected some of {EXTRACTORS}")
    if not isinstance(model_output, str):
        return False
    try:
        candidate = extract_answer(model_output, extractors)
        return candidate is not None and answers_match(benchmark, candidate, reference)
    except (Exception, TimeoutException):
        # A timeout or a sympy failure on an odd answer means it could not be shown equal.
        return False

"""The math benchmarks: grading, the real-format readers, the generated set and the environment.

Tests on the real GSM8K / MATH-500 / SimulEq files skip when /work/shared/data/math is absent.
"""
from __future__ import annotations

import json

import polars as pl
import pytest

from depo.envs import build_suite
from depo.envs.base import Task
from depo.envs.math import (
    BENCHMARKS,
    PROBLEM_SCHEMA,
    MathEnv,
    MathSuite,
    generate_problems,
    grade,
    load_from_hub,
    load_jsonl,
)
from tests.conftest import SHARED_DATA

MATH_DATA = SHARED_DATA / "math"
FILES = {"gsm8k": "gsm8k_test.jsonl", "math": "math500_test.jsonl", "simuleq": "simuleq_test.jsonl"}
ROWS = {"gsm8k": 1319, "math": 500, "simuleq": 451}
GOLDS = {"gsm8k": "Some work.\n#### {}", "math": "So the answer is $\\boxed{{{}}}$.", "simuleq": "{}"}


def _gold(benchmark: str, answer: str) -> str:
    return GOLDS[benchmark].format(answer)


@pytest.fixture(scope="module")
def real_problems() -> dict[str, pl.DataFrame]:
    if not MATH_DATA.is_dir():
        pytest.skip(f"the shared math data folder {MATH_DATA} is absent")
    return {benchmark: load_jsonl(benchmark, MATH_DATA / name) for benchmark, name in FILES.items()}


@pytest.fixture(scope="module")
def generated() -> pl.DataFrame:
    return generate_problems(n_per_benchmark=20, seed=0)


# -- grading ----------------------------------------------------------------------------------------
MATCHES = [
    ("\\frac{1}{2}", "0.5"),
    ("1/2", "0.5"),
    ("1,000", "1000"),
    ("1000", "1,000"),
    ("\\boxed{x=3}", "3"),
    ("18 dollars", "18"),
    ("The answer is 42", "42"),
    ("#### 42", "42"),
    ("$42", "42"),
    ("Adding the parts gives 40 + 2 = 42.\nThe answer is 42.", "42"),
]
MISMATCHES = [
    ("43", "42"),
    ("", "42"),
    ("I am not sure how to solve this", "42"),
    ("The answer is 24", "42"),
    ("\\boxed{41}", "42"),
]


@pytest.mark.parametrize("bench", BENCHMARKS)
@pytest.mark.parametrize(("output", "answer"), MATCHES)
def test_equivalent_answers_match(bench, output, answer):
    assert grade(bench, output, _gold(bench, answer))


@pytest.mark.parametrize("bench", BENCHMARKS)
@pytest.mark.parametrize(("output", "answer"), MISMATCHES)
def test_wrong_or_missing_answers_do_not_match(bench, output, answer):
    assert not grade(bench, output, _gold(bench, answer))


def test_math_latex_equivalence_and_rounded_simuleq_golds():
    # Only MATH golds can be fractions; GSM8K and SimulEq golds are plain numbers.
    assert grade("math", "0.5", "$\\boxed{\\frac{1}{2}}$")
    assert grade("math", "\\dfrac{3}{4}", "$\\boxed{\\frac34}$")
    assert grade("math", "\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\boxed{(3,\\frac{\\pi}{2})}")
    assert not grade("math", "\\frac{4}{3}", "\\boxed{\\frac{3}{4}}")
    assert grade("simuleq", "583.33", "583.3333")
    assert grade("simuleq", "1750/3", "583.3333")
    assert not grade("simuleq", "584", "583.3333")


def test_unknown_benchmark_is_a_value_error_listing_the_valid_ones():
    with pytest.raises(ValueError, match="gsm8k"):
        grade("aime", "1", "1")
    with pytest.raises(ValueError, match="simuleq"):
        load_jsonl("svamp", "whatever.jsonl")
    with pytest.raises(ValueError, match="math"):
        load_from_hub("svamp")


def test_hub_split_that_does_not_exist_is_a_value_error():
    with pytest.raises(ValueError, match="train"):
        load_from_hub("math", split="train")


# -- real files ---------------------------------------------------------------------------------------
def _self_grading_failures(benchmark: str, frame: pl.DataFrame, output_column: str, gold_column: str):
    return [
        (row["problem_id"], row["answer"])
        for row in frame.to_dicts()
        if not grade(benchmark, row[output_column], row[gold_column])
    ]


@pytest.mark.parametrize(("bench", "min_rate"), [("gsm8k", 0.995), ("math", 0.995), ("simuleq", 1.0)])
def test_gold_solutions_grade_correct_against_their_own_gold(real_problems, bench, min_rate):
    frame = real_problems[bench]
    # GSM8K and MATH: the worked solution against the gold field; MATH-500's solution also against
    # its separate `answer` field. SimulEq has only the answer string.
    checks = [("gold", "gold"), ("answer", "gold")]
    if bench == "math":
        checks.append(("solution", "answer"))
    for output_column, gold_column in checks:
        failures = _self_grading_failures(bench, frame, output_column, gold_column)
        rate = 1 - len(failures) / frame.height
        print(f"{bench} {output_column} vs {gold_column}: {rate:.2%} self-graded")
        assert rate >= min_rate, f"{bench} {output_column} vs {gold_column}: {rate:.2%}; failures {failures}"


def test_loaders_map_the_real_fields(real_problems):
    for benchmark, frame in real_problems.items():
        assert frame.height == ROWS[benchmark]
        assert frame.schema == pl.Schema(PROBLEM_SCHEMA)
        assert set(frame["benchmark"]) == {benchmark} and set(frame["split"]) == {"test"}
        assert set(frame["source"]) == {f"file:{FILES[benchmark]}"}
        assert frame["problem_id"].n_unique() == frame.height
        assert frame["problem_id"][17] == f"{benchmark}/test/17"
        first = json.loads((MATH_DATA / FILES[benchmark]).open().readline())
        row = frame.row(0, named=True)
        assert row["question"] == (first.get("question") or first["problem"]).strip()
        assert row["gold"] == (first["answer"] if benchmark != "math" else first["solution"])

    gsm8k = real_problems["gsm8k"].row(0, named=True)
    assert gsm8k["answer"] == "18" and gsm8k["solution"] == gsm8k["gold"]
    math = real_problems["math"].row(0, named=True)
    assert (math["answer"], math["subject"], math["level"]) == ("\\left( 3, \\frac{\\pi}{2} \\right)", "Precalculus", 2)
    assert real_problems["math"]["level"].is_between(1, 5).all()
    simuleq = real_problems["simuleq"].row(0, named=True)
    assert (simuleq["gold"], simuleq["answer"], simuleq["solution"]) == ("15", "15", None)


def test_expert_solves_every_real_problem(real_problems):
    frame = pl.concat(list(real_problems.values()))
    suite = MathSuite(frame)
    env = suite.make_env()
    failures = []
    for task in suite.make_tasks("test", frame.height, seed=0):
        env.reset(task)
        if env.step(env.expert_turn().action).reward != 1.0:
            failures.append(task.task_id)
    assert not failures


@pytest.mark.parametrize(
    ("bench", "bad_line", "complaint"),
    [
        ("gsm8k", '{"question": "How many?", "answer": "12"', "not valid JSON"),
        ("gsm8k", '{"question": "How many?"}', "'answer'"),
        ("gsm8k", '{"question": "How many?", "answer": "It is 12."}', "####"),
        ("gsm8k", '["How many?", "#### 12"]', "JSON object"),
        ("math", '{"problem": "Find x.", "solution": "x is 3."}', "boxed"),
        ("math", '{"problem": "", "solution": "$\\\\boxed{3}$"}', "'problem'"),
        ("simuleq", '{"question": "How many?", "answer": "twelve"}', "numeric"),
        ("simuleq", '{"question": "How many?", "answer": 12}', "'answer'"),
    ],
)
def test_broken_jsonl_line_names_file_line_and_problem(tmp_path, bench, bad_line, complaint):
    good = {
        "gsm8k": {"question": "How many?", "answer": "3 + 4 = 7\n#### 7"},
        "math": {"problem": "Find x.", "solution": "So $x = \\boxed{3}$."},
        "simuleq": {"question": "How many?", "answer": "7"},
    }[bench]
    path = tmp_path / "broken.jsonl"
    path.write_text(f"{json.dumps(good)}\n\n{bad_line}\n{json.dumps(good)}\n")
    with pytest.raises(ValueError, match="line 3") as error:
        load_jsonl(bench, path)
    assert "broken.jsonl" in str(error.value) and complaint in str(error.value)


def test_blank_lines_are_skipped_and_empty_files_rejected(tmp_path):
    path = tmp_path / "simuleq.jsonl"
    path.write_text('{"question": "How many?", "answer": "7"}\n\n{"question": "And now?", "answer": "2.5"}\n')
    frame = load_jsonl("simuleq", path)
    assert frame["problem_id"].to_list() == ["simuleq/test/0", "simuleq/test/1"]
    path.write_text("\n")
    with pytest.raises(ValueError, match="no simuleq problems"):
        load_jsonl("simuleq", path)


# -- generated set ----------------------------------------------------------------------------------
def test_generated_set_is_seeded_and_shaped_like_the_real_ones(generated):
    assert generated.schema == pl.Schema(PROBLEM_SCHEMA)
    assert generated.equals(generate_problems(n_per_benchmark=20, seed=0))
    assert not generated["question"].equals(generate_problems(n_per_benchmark=20, seed=1)["question"])
    counts = generated.group_by("benchmark", "split").len()
    assert counts.height == 6 and set(counts["len"]) == {20}
    assert set(generated["source"]) == {"generated"}
    assert generated["problem_id"].n_unique() == generated.height
    assert generated.filter(pl.col("benchmark") == "gsm8k")["gold"].str.contains("\n#### ").all()
    assert generated.filter(pl.col("benchmark") == "math")["gold"].str.contains("\\boxed{", literal=True).all()


def test_generated_train_and_test_share_no_question():
    frame = generate_problems(n_per_benchmark=150, seed=3)
    train = set(frame.filter(pl.col("split") == "train")["question"])
    test = set(frame.filter(pl.col("split") == "test")["question"])
    assert len(train) == len(test) == 450 and not train & test


def test_every_generated_gold_grades_correct_against_itself():
    frame = generate_problems(n_per_benchmark=60, seed=7)
    failures = [
        (row["problem_id"], column)
        for row in frame.to_dicts()
        for column in ("gold", "solution", "answer")
        if not grade(row["benchmark"], row[column], row["gold"])
    ]
    assert not failures


def test_simuleq_generates_rounded_non_integer_golds():
    golds = generate_problems(n_per_benchmark=100, seed=0).filter(pl.col("benchmark") == "simuleq")["gold"]
    decimals = [g for g in golds if "." in g]
    assert decimals and all(len(g.split(".")[1]) <= 4 for g in decimals)


@pytest.mark.parametrize(("kwargs", "name"), [({"n_per_benchmark": 0, "seed": 0}, "n_per_benchmark"),
                                              ({"n_per_benchmark": 5, "seed": "0"}, "seed")])
def test_generate_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        generate_problems(**kwargs)


# -- environment ------------------------------------------------------------------------------------
def test_suite_needs_the_problems_dataset():
    with pytest.raises(ValueError, match="math_problems"):
        MathSuite(None)
    with pytest.raises(ValueError, match="math_problems"):
        build_suite("math", {})


def test_suite_tasks_are_seeded_balanced_and_split(generated):
    suite = build_suite("math", {"max_steps": 1}, problems=generated)
    tasks = suite.make_tasks("test", 30, seed=5)
    assert tasks == suite.make_tasks("test", 30, seed=5)
    assert [t.task_id for t in tasks] != [t.task_id for t in suite.make_tasks("test", 30, seed=6)]
    assert len({t.task_id for t in tasks}) == 30 and {t.split for t in tasks} == {"test"}
    by_benchmark = pl.Series([t.spec["benchmark"] for t in tasks]).value_counts()
    assert set(by_benchmark["count"]) == {10}
    assert set(tasks[0].spec) >= {"benchmark", "problem_id", "question", "gold"}
    train = {t.spec["question"] for t in suite.make_tasks("train", 60, seed=5)}
    assert not train & {t.spec["question"] for t in suite.make_tasks("test", 60, seed=5)}
    with pytest.raises(ValueError, match="train split"):
        suite.make_tasks("train", 61, seed=0)


def test_suite_filters_benchmarks_and_rejects_shared_questions(generated):
    suite = MathSuite(generated, benchmarks=["simuleq"])
    assert {t.spec["benchmark"] for t in suite.make_tasks("train", 20, seed=0)} == {"simuleq"}
    with pytest.raises(ValueError, match="benchmarks"):
        MathSuite(generated, benchmarks=["svamp"])
    leaked = generated.with_columns(
        pl.when(pl.col("problem_id") == "gsm8k/test/0")
        .then(pl.lit(generated.filter(pl.col("problem_id") == "gsm8k/train/0")["question"][0]))
        .otherwise(pl.col("question"))
        .alias("question")
    )
    with pytest.raises(ValueError, match="both train and test"):
        MathSuite(leaked)


def test_expert_turn_solves_generated_test_tasks(generated):
    suite = MathSuite(generated)
    env = suite.make_env()
    for task in suite.make_tasks("test", 60, seed=0):
        observation = env.reset(task)
        assert task.spec["question"] in observation and env.available_actions() == []
        turn = env.expert_turn()
        assert turn.thought and "\n" not in turn.thought and "<<" not in turn.thought
        result = env.step(turn.action)
        assert (result.reward, result.done, env.steps_taken) == (1.0, True, 1)
        assert result.info["valid_action"] and result.info["success"]
        assert result.info["gold_answer"] == turn.action


def _task(generated: pl.DataFrame, benchmark: str) -> Task:
    return MathSuite(generated, benchmarks=[benchmark]).make_tasks("test", 1, seed=0)[0]


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_wrong_answer_scores_zero(generated, bench):
    env = MathEnv()
    env.reset(_task(generated, bench))
    wrong = f"{float(env.gold_answer) + 1:g}" if bench != "math" else "\\frac{1}{1234567}"
    result = env.step(wrong)
    assert (result.reward, result.done) == (0.0, True)
    assert result.info["valid_action"] and not result.info["success"]


GARBAGE = [
    "", "   ", "Thought: let me think", "Action:", "\x00\x01\x02", "}{", "$$$$$$", "\\boxed{" * 60,
    "🙂 ∑∫ √2 ≈ 1.414 — 答案是四十二", "\u200b", "x" * 100_000, "9" * 5000, "1/0", "\\frac{1}{0}",
    "10**10**10", "2^{2^{2^{2^{2}}}}", "nan", "1e999", "((((((((((1", "\\sqrt{-1}", "The answer is \\boxed{}",
]


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_any_model_text_is_answered_without_raising(generated, bench):
    env = MathEnv()
    task = _task(generated, bench)
    for text in GARBAGE:
        env.reset(task)
        result = env.step(text)
        assert result.done and result.reward == 0.0 and isinstance(result.info["valid_action"], bool)
        assert result.info["success"] is False
    for text in ("", "   ", "x" * 100_000, "9" * 5000, "}{", "\x00\x01\x02"):
        env.reset(task)
        assert env.step(text).info["valid_action"] is False
    if bench != "math":  # MATH answers may be words; elsewhere prose without a number is no answer
        env.reset(task)
        assert env.step("I am not sure how to solve this").info["valid_action"] is False


def test_extra_steps_allow_another_attempt_after_an_invalid_answer(generated):
    env = MathEnv(max_steps=2)
    env.reset(_task(generated, "gsm8k"))
    first = env.step("no idea")
    assert (first.done, first.info["valid_action"], "success" in first.info) == (False, False, False)
    second = env.step(env.expert_turn().action)
    assert (second.done, second.reward, env.steps_taken) == (True, 1.0, 2)
    with pytest.raises(RuntimeError):
        env.step("1")


def test_clone_is_an_independent_copy(generated):
    env = MathEnv()
    observation = env.reset(_task(generated, "math"))
    twin = env.clone()
    answer = env.expert_turn().action
    a, b = env.step(answer), twin.step(answer)
    assert (a.observation, a.reward, a.done, a.info) == (b.observation, b.reward, b.done, b.info)

    env.reset(_task(generated, "simuleq"))
    twin = env.clone()
    twin.step("0")
    assert env.steps_taken == 0 and not env.done and env.observation() != observation
    assert env.step(env.expert_turn().action).reward == 1.0 and twin.steps_taken == 1

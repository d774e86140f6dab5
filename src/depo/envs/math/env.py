"""Math problems as a text environment: the observation is the problem, the action is the answer.

An episode is one answer: `step(action)` grades the action text with `grade(benchmark, action, gold)`
and ends the episode with reward 1.0 (correct) or 0.0. Answers are free text, so
`available_actions()` is empty. An action with no recognisable final answer (empty, prose without
a number, symbols only, longer than `MAX_ACTION_CHARS`) is an invalid action; it ends the episode unless
`max_steps` leaves room for another attempt (default `max_steps=1`: every episode is one step).
"""
from __future__ import annotations

import copy
import random
import re
from typing import Any

import polars as pl

from depo.agent.react import MAX_ACTION_CHARS, AgentTurn
from depo.envs.base import StepResult, Task, TaskSuite, TextEnv, check_split
from depo.envs.math.grading import BENCHMARKS, RULES, extract_answer, gold_answer, grade

ENV_NAME = "math"
INSTRUCTION = "Reason in the Thought; give only the final answer in the Action."
SPEC_FIELDS = ("benchmark", "problem_id", "question", "gold", "solution")

SYSTEM_PROMPT = """You solve math problems: grade-school word problems, competition algebra and systems of linear equations.
Each observation gives one problem. Work it out step by step, then give the final answer: a number or a simplified \
expression (fractions as \\frac{a}{b}), with no units and no explanation. You answer once, and the answer is \
checked against the correct one.
Reply in exactly this format:
Thought: <your reasoning>
Action: <the final answer only>"""

# Solution text that is not reasoning: GSM8K calculator annotations and final line, MATH figures.
_CALCULATOR = re.compile(r"<<[^<>]*>>")
_FINAL_LINE = re.compile(r"^####.*$", re.MULTILINE)
_FIGURE = re.compile(r"\[asy\].*?\[/asy\]", re.DOTALL)


def worked_reasoning(solution: str | None, answer: str) -> str:
    """A dataset's worked solution as one line of reasoning (a generic plan when there is none)."""
    text = _FIGURE.sub(" ", _FINAL_LINE.sub(" ", _CALCULATOR.sub("", solution or "")))
    text = " ".join(text.split())
    return text or (
        f"Let the two unknowns be variables, write one linear equation for each fact and solve the "
        f"system; the quantity asked for is {answer}."
    )


class MathEnv(TextEnv):
    """One math problem per episode, answered in free text."""

    name = ENV_NAME

    def __init__(self, max_steps: int = 1):
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.max_steps = max_steps
        self.task: Task | None = None
        self._steps = 0
        self._done = True

    def reset(self, task: Task) -> str:
        if task.env != ENV_NAME:
            raise ValueError(f"task {task.task_id!r} is for env {task.env!r}, not {ENV_NAME!r}")
        missing = [name for name in ("benchmark", "question", "gold") if not task.spec.get(name)]
        if missing:
            raise ValueError(f"task {task.task_id!r}: spec lacks {missing}")
        self.task = task
        self.benchmark: str = task.spec["benchmark"]
        self.gold: str = task.spec["gold"]
        self.gold_answer = gold_answer(self.benchmark, self.gold)  # ValueError for a bad benchmark or gold
        self._steps = 0
        self._done = False
        return self.observation()

    def observation(self) -> str:
        if self.task is None:
            raise RuntimeError("call reset(task) before reading an observation")
        return f"Problem: {self.task.spec['question']}\n{INSTRUCTION}"

    def clone(self) -> "MathEnv":
        return copy.copy(self)  # all state is immutable (strings, ints, the frozen task)

    def available_actions(self) -> list[str]:
        return []

    @property
    def steps_taken(self) -> int:
        return self._steps

    @property
    def done(self) -> bool:
        return self._done

    def _extracted_answer(self, action: Any) -> str | None:
        """The final answer in `action`, or None when it has none (no digit for a numeric benchmark,
        no letter or digit at all for MATH, whose answers may be words such as `\\text{Monday}`)."""
        if not isinstance(action, str) or len(action) > MAX_ACTION_CHARS:
            return None
        try:
            answer = extract_answer(action, RULES[self.benchmark].extractors)
        except Exception:  # odd model text must never end a rollout
            return None
        needed = str.isalnum if self.benchmark == "math" else str.isdigit
        return answer if answer is not None and any(needed(char) for char in answer) else None

    def step(self, action: str) -> StepResult:
        if self.task is None or self._done:
            raise RuntimeError("no episode is running; call reset(task) first")
        self._steps += 1
        answer = self._extracted_answer(action)
        info: dict[str, Any] = {"valid_action": answer is not None, "extracted_answer": answer,
                                "gold_answer": self.gold_answer}
        if answer is None and self._steps < self.max_steps:
            observation = f"No final answer found in the action; give only the final answer.\n{self.observation()}"
            return StepResult(observation=observation, reward=0.0, done=False, info=info)
        success = answer is not None and grade(self.benchmark, action, self.gold)
        self._done = True
        info["success"] = success
        if answer is None:
            observation = "No final answer found in the action."
        else:
            observation = f"Your answer {answer} is {'correct' if success else 'incorrect'}."
        return StepResult(observation=observation, reward=1.0 if success else 0.0, done=True, info=info)

    def expert_turn(self) -> AgentTurn:
        if self.task is None:
            raise RuntimeError("call reset(task) before asking the expert")
        return AgentTurn(thought=worked_reasoning(self.task.spec.get("solution"), self.gold_answer),
                         action=self.gold_answer)


class MathSuite(TaskSuite):
    """Tasks drawn from a problems table (`PROBLEM_SCHEMA`), balanced over its benchmarks.

    `problems` is the `math_problems` dataset; its `split` column gives the task splits, so
    train and test share a task only if the table does (checked here by question text).
    """

    name = ENV_NAME
    system_prompt = SYSTEM_PROMPT

    def __init__(self, problems: pl.DataFrame | None, benchmarks: list[str] | None = None, max_steps: int = 1):
        if problems is None:
            raise ValueError(
                "MathSuite needs the math_problems dataset as `problems` (a table in PROBLEM_SCHEMA, "
                "made by the rollouts pipeline's make_math_problems from the math_data parameters)"
            )
        missing = [c for c in ("benchmark", "problem_id", "split", "question", "gold") if c not in problems.columns]
        if missing:
            raise ValueError(f"problems: missing column(s) {missing}")
        self.benchmarks = list(BENCHMARKS) if benchmarks is None else list(benchmarks)
        unknown = [b for b in self.benchmarks if b not in BENCHMARKS]
        if unknown or not self.benchmarks:
            raise ValueError(f"benchmarks must be a non-empty subset of {BENCHMARKS}, got {benchmarks!r}")
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.max_steps = max_steps
        frame = problems.filter(pl.col("benchmark").is_in(self.benchmarks))
        if frame.is_empty():
            raise ValueError(f"problems: no rows for benchmarks {self.benchmarks}")
        repeated = frame["problem_id"].filter(frame["problem_id"].is_duplicated()).unique().to_list()
        if repeated:
            raise ValueError(f"problems: problem_id values repeat: {sorted(repeated)[:5]}")
        questions = {split: set(frame.filter(pl.col("split") == split)["question"]) for split in ("train", "test")}
        shared = questions["train"] & questions["test"]
        if shared:
            raise ValueError(f"problems: {len(shared)} question(s) are in both train and test, e.g. {min(shared)!r}")
        columns = [c for c in SPEC_FIELDS if c in frame.columns]
        self._pools: dict[str, dict[str, list[dict[str, Any]]]] = {
            split: {
                benchmark: frame.filter((pl.col("split") == split) & (pl.col("benchmark") == benchmark))
                .sort("problem_id")
                .select(columns)
                .to_dicts()
                for benchmark in self.benchmarks
            }
            for split in ("train", "test")
        }

    def n_problems(self, split: str) -> dict[str, int]:
        check_split(split)
        return {benchmark: len(pool) for benchmark, pool in self._pools[split].items()}

    def make_tasks(self, split: str, n: int, seed: int) -> list[Task]:
        """`n` distinct problems of `split`, taken in turn from each benchmark's seeded shuffle.

        A benchmark that runs out leaves the rest to the others; asking for more problems than the
        split holds raises ValueError.
        """
        check_split(split)
        counts = self.n_problems(split)
        available = sum(counts.values())
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= available:
            raise ValueError(
                f"n must be an integer in [0, {available}] for the {split} split (problems per benchmark: "
                f"{counts}), got {n!r}"
            )
        rng = random.Random(f"math/{split}/{seed}")
        queues = [rng.sample(pool, len(pool)) for pool in self._pools[split].values()]
        picked: list[dict[str, Any]] = []
        while len(picked) < n:
            for queue in queues:
                if queue and len(picked) < n:
                    picked.append(queue.pop())
        return [
            Task(env=ENV_NAME, task_id=row["problem_id"], split=split, seed=seed,
                 spec={field: row.get(field) for field in SPEC_FIELDS})
            for row in picked
        ]

    def make_env(self) -> MathEnv:
        return MathEnv(max_steps=self.max_steps)

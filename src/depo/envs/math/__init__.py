"""GSM8K, MATH and SimulEq as a one-answer text environment: grading, problem tables, the suite."""
from depo.envs.math.data import PROBLEM_SCHEMA, load_from_hub, load_jsonl
from depo.envs.math.env import SYSTEM_PROMPT, MathEnv, MathSuite
from depo.envs.math.generate import generate_problems
from depo.envs.math.grading import BENCHMARKS, extract_answer, gold_answer, grade

__all__ = [
    "BENCHMARKS",
    "PROBLEM_SCHEMA",
    "SYSTEM_PROMPT",
    "MathEnv",
    "MathSuite",
    "extract_answer",
    "generate_problems",
    "gold_answer",
    "grade",
    "load_from_hub",
    "load_jsonl",
]

"""The offline default problem set: seeded, templated problems shaped like GSM8K, MATH and SimulEq.

`generate_problems(n_per_benchmark, seed)` gives `n_per_benchmark` train and as many test problems
per benchmark in `PROBLEM_SCHEMA`. Questions are de-duplicated before the split (the first half
goes to train, the second to test), so no question text is in both. Golds follow the real formats:
a worked solution ending in `#### n` (GSM8K), a solution with `\\boxed{…}` (MATH) and a number
string rounded to 4 decimals (SimulEq, with the worked solution in `solution`).
"""
from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction
from math import lcm

import polars as pl

from depo.envs.math.data import problems_frame
from depo.envs.math.grading import BENCHMARKS

# (question, worked solution, final answer); None when the drawn numbers make a poor problem.
Problem = tuple[str, str, str]
Template = Callable[[random.Random], Problem | None]

PEOPLE = (("Maya", "she"), ("Liam", "he"), ("Ava", "she"), ("Noah", "he"), ("Zoe", "she"), ("Omar", "he"),
          ("Lena", "she"), ("Ravi", "he"), ("Ines", "she"), ("Tomas", "he"), ("Priya", "she"), ("Kofi", "he"))
ITEMS = ("stickers", "marbles", "pencils", "cards", "stamps", "beads", "shells", "erasers")
GOODS = ("loaves", "muffins", "bagels", "cookies", "pies", "rolls")
PRICED = ("notebooks", "apples", "candles", "mugs", "plants", "books", "scarves")
MAX_ATTEMPTS_PER_PROBLEM = 50


def _calc(expression: str, value: int) -> str:
    """A GSM8K-style calculation with its calculator annotation: `3 * 4 = <<3*4=12>>12`."""
    return f"{expression} = <<{expression.replace(' ', '')}={value}>>{value}"


def _decimal(value: Fraction) -> str:
    """A number the way SimulEq writes it: integers bare, others rounded to 4 decimals."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.4f}".rstrip("0").rstrip(".")


def _latex(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# -- GSM8K: multi-step arithmetic word problems -------------------------------------------------------
def _gsm8k_change(rng: random.Random) -> Problem | None:
    (name, _), item = rng.choice(PEOPLE), rng.choice(PRICED)
    count, price, bill = rng.randint(2, 9), rng.randint(2, 15), rng.choice((20, 50, 100))
    cost = count * price
    if cost >= bill:
        return None
    question = (f"{name} buys {count} {item} that cost ${price} each and pays with a ${bill} bill. "
                f"How much change, in dollars, does {name} get back?")
    change = bill - cost
    steps = [f"The {item} cost {_calc(f'{count} * {price}', cost)} dollars.",
             f"The change is {_calc(f'{bill} - {cost}', change)} dollars."]
    return question, "\n".join(steps + [f"#### {change}"]), str(change)


def _gsm8k_collect(rng: random.Random) -> Problem | None:
    (name, pronoun), item = rng.choice(PEOPLE), rng.choice(ITEMS)
    have, packs, per_pack = rng.randint(5, 60), rng.randint(2, 8), rng.randint(3, 12)
    bought = packs * per_pack
    given = rng.randint(1, have + bought - 1)
    question = (f"{name} has {have} {item}. {pronoun.capitalize()} buys {packs} packs with {per_pack} {item} in "
                f"each pack, then gives {given} {item} to a friend. How many {item} does {name} have now?")
    total = have + bought
    left = total - given
    steps = [f"{name} buys {_calc(f'{packs} * {per_pack}', bought)} {item}.",
             f"Then {pronoun} has {_calc(f'{have} + {bought}', total)} {item}.",
             f"After giving some away, {pronoun} has {_calc(f'{total} - {given}', left)} {item}."]
    return question, "\n".join(steps + [f"#### {left}"]), str(left)


def _gsm8k_production(rng: random.Random) -> Problem | None:
    goods = rng.choice(GOODS)
    per_hour, hours, days = rng.randint(6, 40), rng.randint(4, 12), rng.randint(2, 7)
    question = (f"A bakery bakes {per_hour} {goods} every hour and is open {hours} hours a day. "
                f"How many {goods} does it bake in {days} days?")
    per_day = per_hour * hours
    total = per_day * days
    steps = [f"Each day it bakes {_calc(f'{per_hour} * {hours}', per_day)} {goods}.",
             f"In {days} days it bakes {_calc(f'{per_day} * {days}', total)} {goods}."]
    return question, "\n".join(steps + [f"#### {total}"]), str(total)


def _gsm8k_fraction(rng: random.Random) -> Problem | None:
    denominator = rng.choice((3, 4, 5, 6, 8, 10))
    numerator = rng.randint(1, denominator - 1)
    if Fraction(numerator, denominator).denominator != denominator:
        return None  # keep fractions in lowest terms, as a word problem would write them
    students = denominator * rng.randint(3, 12)
    question = (f"A school club has {students} members. {numerator}/{denominator} of them play chess. "
                f"How many members do not play chess?")
    chess = students * numerator // denominator
    rest = students - chess
    steps = [f"{_calc(f'{students} * {numerator} / {denominator}', chess)} members play chess.",
             f"So {_calc(f'{students} - {chess}', rest)} members do not play chess."]
    return question, "\n".join(steps + [f"#### {rest}"]), str(rest)


def _gsm8k_savings(rng: random.Random) -> Problem | None:
    (name, pronoun), thing = rng.choice(PEOPLE), rng.choice(("bike", "guitar", "tablet", "tent", "camera"))
    weeks, per_week, have = rng.randint(3, 20), rng.randint(5, 30), rng.randint(10, 120)
    cost = have + weeks * per_week
    question = (f"{name} wants a {thing} that costs ${cost}. {pronoun.capitalize()} has ${have} and saves "
                f"${per_week} every week. How many weeks will it take {name} to have exactly enough money?")
    need = cost - have
    steps = [f"{name} still needs {_calc(f'{cost} - {have}', need)} dollars.",
             f"Saving {per_week} dollars a week takes {_calc(f'{need} / {per_week}', weeks)} weeks."]
    return question, "\n".join(steps + [f"#### {weeks}"]), str(weeks)


# -- SimulEq: two linear equations in two unknowns, one unknown asked -----------------------------------
def _simuleq_tickets(rng: random.Random) -> Problem | None:
    student_price, adult_price = rng.sample(range(3, 16), 2)
    students, adults = rng.randint(20, 400), rng.randint(20, 400)
    tickets, money = students + adults, student_price * students + adult_price * adults
    question = (f"A school play sells student tickets for {student_price} dollars and adult tickets for "
                f"{adult_price} dollars. It sells {tickets} tickets and collects {money} dollars. "
                f"How many student tickets were sold? How many adult tickets were sold?")
    solution = (f"Let s be the student tickets and a the adult tickets: s + a = {tickets} and "
                f"{student_price}s + {adult_price}a = {money}. Substituting a = {tickets} - s gives "
                f"{student_price - adult_price}s = {money - adult_price * tickets}, so s = {students}.")
    return question, solution, str(students)


def _simuleq_sum_difference(rng: random.Random) -> Problem | None:
    total, difference = rng.randint(20, 300), rng.randint(1, 60)
    if difference >= total:
        return None
    larger = Fraction(total + difference, 2)
    question = (f"The sum of two numbers is {total}. One number is {difference} more than the other. "
                f"What is the larger number? What is the smaller number?")
    solution = (f"Let x be the larger and y the smaller number: x + y = {total} and x - y = {difference}. "
                f"Adding the equations gives 2x = {total + difference}, so x = {_decimal(larger)}.")
    return question, solution, _decimal(larger)


def _simuleq_investment(rng: random.Random) -> Problem | None:
    (name, _), (rate_a, rate_b) = rng.choice(PEOPLE), rng.sample(range(2, 10), 2)
    at_a, at_b = 100 * rng.randint(5, 80), 100 * rng.randint(5, 80)
    total, interest = at_a + at_b, (rate_a * at_a + rate_b * at_b) // 100
    question = (f"{name} invested {total} dollars in two funds, which pay {rate_a} % and {rate_b} % simple "
                f"interest. The interest earned in one year was {interest} dollars. How many dollars were "
                f"invested at {rate_a} %? How many at {rate_b} %?")
    solution = (f"Let x be the dollars at {rate_a} % and y at {rate_b} %: x + y = {total} and "
                f"0.{rate_a:02d}x + 0.{rate_b:02d}y = {interest}. Substituting y = {total} - x gives "
                f"{(rate_a - rate_b) / 100:g}x = {_decimal(Fraction(100 * interest - rate_b * total, 100))}, "
                f"so x = {at_a}.")
    return question, solution, str(at_a)


def _simuleq_mixture(rng: random.Random) -> Problem | None:
    cheap, dear = sorted(rng.sample(range(2, 15), 2))
    if dear - cheap < 2:
        return None
    blend, pounds = rng.randint(cheap + 1, dear - 1), rng.choice((10, 12, 20, 25, 30, 50, 100))
    dear_pounds = Fraction(pounds * (blend - cheap), dear - cheap)
    question = (f"A shop mixes nuts that cost {dear} dollars per pound with nuts that cost {cheap} dollars per "
                f"pound to make {pounds} pounds of a mix worth {blend} dollars per pound. How many pounds of "
                f"the {dear}-dollar nuts are in the mix? How many pounds of the {cheap}-dollar nuts?")
    solution = (f"Let x be the pounds at {dear} dollars and y at {cheap} dollars: x + y = {pounds} and "
                f"{dear}x + {cheap}y = {blend * pounds}. Substituting y = {pounds} - x gives "
                f"{dear - cheap}x = {pounds * (blend - cheap)}, so x = {_decimal(dear_pounds)}.")
    return question, solution, _decimal(dear_pounds)


def _simuleq_coins(rng: random.Random) -> Problem | None:
    dimes, quarters = rng.randint(3, 90), rng.randint(3, 90)
    coins, cents = dimes + quarters, 10 * dimes + 25 * quarters
    question = (f"A jar holds only dimes and quarters: {coins} coins worth {cents / 100:.2f} dollars in all. "
                f"How many quarters are in the jar? How many dimes?")
    solution = (f"Let q be the quarters and d the dimes: q + d = {coins} and 25q + 10d = {cents} cents. "
                f"Substituting d = {coins} - q gives 15q = {cents - 10 * coins}, so q = {quarters}.")
    return question, solution, str(quarters)


# -- MATH: short algebra and arithmetic with a boxed answer -------------------------------------------
def _math_linear_equation(rng: random.Random) -> Problem | None:
    a, b, c = rng.randint(2, 12), rng.choice([n for n in range(-20, 21) if n]), rng.randint(-30, 30)
    x = Fraction(c - b, a)
    sign = "+" if b > 0 else "-"
    question = f"Solve for $x$: ${a}x {sign} {abs(b)} = {c}$. Express your answer in simplest form."
    solution = (f"Moving the constant to the right gives ${a}x = {c - b}$, so "
                f"$x = \\frac{{{c - b}}}{{{a}}} = \\boxed{{{_latex(x)}}}$.")
    return question, solution, _latex(x)


def _math_fraction_sum(rng: random.Random) -> Problem | None:
    (b, d), a, c = rng.sample(range(2, 13), 2), rng.randint(1, 11), rng.randint(1, 11)
    total = Fraction(a, b) + Fraction(c, d)
    if total.denominator == 1 or Fraction(a, b).denominator != b or Fraction(c, d).denominator != d:
        return None
    common = lcm(b, d)
    question = f"Compute $\\frac{{{a}}}{{{b}}} + \\frac{{{c}}}{{{d}}}$. Express your answer as a common fraction."
    solution = (f"Over the common denominator ${common}$: $\\frac{{{a * common // b}}}{{{common}}} + "
                f"\\frac{{{c * common // d}}}{{{common}}} = \\frac{{{a * common // b + c * common // d}}}"
                f"{{{common}}} = \\boxed{{{_latex(total)}}}$.")
    return question, solution, _latex(total)


def _math_polynomial_value(rng: random.Random) -> Problem | None:
    a, b, c, k = rng.randint(1, 6), rng.randint(-9, 9), rng.randint(-15, 15), rng.randint(-5, 6)
    value = a * k * k + b * k + c
    a_term = "" if a == 1 else str(a)
    b_term = f" {'+' if b > 0 else '-'} {'' if abs(b) == 1 else abs(b)}x" if b else ""
    c_term = f" {'+' if c > 0 else '-'} {abs(c)}" if c else ""
    question = f"If $f(x) = {a_term}x^2{b_term}{c_term}$, what is the value of $f({k})$?"
    solution = (f"$f({k}) = {a}({k})^2 + ({b})({k}) + ({c}) = {a * k * k} + ({b * k}) + ({c}) = "
                f"\\boxed{{{value}}}$.")
    return question, solution, str(value)


def _math_slope(rng: random.Random) -> Problem | None:
    x1, y1, x2, y2 = (rng.randint(-10, 10) for _ in range(4))
    if x1 == x2:
        return None
    slope = Fraction(y2 - y1, x2 - x1)
    question = (f"What is the slope of the line through $({x1}, {y1})$ and $({x2}, {y2})$? "
                f"Express your answer in simplest form.")
    solution = (f"The slope is $\\frac{{{y2} - ({y1})}}{{{x2} - ({x1})}} = \\frac{{{y2 - y1}}}{{{x2 - x1}}} = "
                f"\\boxed{{{_latex(slope)}}}$.")
    return question, solution, _latex(slope)


def _math_arithmetic_sequence(rng: random.Random) -> Problem | None:
    first, step, n = rng.randint(-20, 30), rng.choice([s for s in range(-9, 10) if s]), rng.randint(8, 60)
    term = first + (n - 1) * step
    shown = ", ".join(str(first + i * step) for i in range(4))
    question = f"What is the {_ordinal(n)} term of the arithmetic sequence ${shown}, \\ldots$?"
    solution = (f"The first term is ${first}$ and the common difference is ${step}$, so the {_ordinal(n)} term "
                f"is ${first} + {n - 1} \\cdot ({step}) = \\boxed{{{term}}}$.")
    return question, solution, str(term)


TEMPLATES: dict[str, tuple[Template, ...]] = {
    "gsm8k": (_gsm8k_change, _gsm8k_collect, _gsm8k_production, _gsm8k_fraction, _gsm8k_savings),
    "math": (_math_linear_equation, _math_fraction_sum, _math_polynomial_value, _math_slope,
             _math_arithmetic_sequence),
    "simuleq": (_simuleq_tickets, _simuleq_sum_difference, _simuleq_investment, _simuleq_mixture,
                _simuleq_coins),
}


def _distinct_problems(benchmark: str, n: int, seed: int) -> list[Problem]:
    rng = random.Random(f"depo-math/{benchmark}/{seed}")
    problems: dict[str, Problem] = {}
    for _ in range(MAX_ATTEMPTS_PER_PROBLEM * n):
        problem = rng.choice(TEMPLATES[benchmark])(rng)
        if problem is not None:
            problems.setdefault(problem[0], problem)
            if len(problems) == n:
                return list(problems.values())
    raise ValueError(f"could only generate {len(problems)} distinct {benchmark} problems, {n} were asked for")


def _gold(benchmark: str, solution: str, answer: str) -> str:
    # GSM8K and MATH golds are the worked solutions; SimulEq's is the bare number.
    return answer if benchmark == "simuleq" else solution


def generate_problems(n_per_benchmark: int, seed: int) -> pl.DataFrame:
    """`n_per_benchmark` train and `n_per_benchmark` test problems for each benchmark.

    A seed fixes the frame; train and test never share a question. Never reads the real datasets.
    """
    if not isinstance(n_per_benchmark, int) or isinstance(n_per_benchmark, bool) or n_per_benchmark < 1:
        raise ValueError(f"n_per_benchmark must be a positive integer, got {n_per_benchmark!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    rows = []
    for benchmark in BENCHMARKS:
        problems = _distinct_problems(benchmark, 2 * n_per_benchmark, seed)
        for split, chunk in (("train", problems[:n_per_benchmark]), ("test", problems[n_per_benchmark:])):
            for index, (question, solution, answer) in enumerate(chunk):
                rows.append({
                    "benchmark": benchmark,
                    "problem_id": f"{benchmark}/{split}/{index}",
                    "split": split,
                    "question": question,
                    "gold": _gold(benchmark, solution, answer),
                    "answer": answer,
                    "solution": solution,
                    "subject": None,
                    "level": None,
                    "source": "generated",
                })
    return problems_frame(rows)

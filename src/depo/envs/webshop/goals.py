"""WebShop's synthetic goals: one per goal product and combination of its option values.

As in WebShop, a goal's instruction is the product's instruction, then ` with <type>: <value>, and
...` for the option combination, then `, and price lower than <bound> dollars`, where the bound is
the larger of two values drawn from the first four multiples of 10 above the price (no bound and
no price text when fewer than two exist).
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

from depo.envs.webshop.catalog import Product

PRICE_STEPS = tuple(10.0 * i for i in range(1, 100))
NO_PRICE_BOUND = 1_000_000.0


@dataclass(frozen=True)
class Goal:
    """What the shopper must buy; `Task.spec` holds it (`to_spec` / `from_spec`)."""

    asin: str
    name: str
    query: str
    category: str
    product_category: str
    instruction_text: str
    attributes: tuple[str, ...]
    goal_options: tuple[tuple[str, str], ...]  # (option type, value), types sorted as WebShop does
    price_upper: float

    def to_spec(self) -> dict[str, Any]:
        return {
            "asin": self.asin,
            "name": self.name,
            "query": self.query,
            "category": self.category,
            "product_category": self.product_category,
            "instruction_text": self.instruction_text,
            "attributes": list(self.attributes),
            "goal_options": [list(pair) for pair in self.goal_options],
            "price_upper": self.price_upper,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "Goal":
        missing = [key for key in cls.__dataclass_fields__ if key not in spec]
        if missing:
            raise ValueError(f"WebShop task spec is missing {missing}")
        return cls(
            asin=spec["asin"],
            name=spec["name"],
            query=spec["query"],
            category=spec["category"],
            product_category=spec["product_category"],
            instruction_text=spec["instruction_text"],
            attributes=tuple(spec["attributes"]),
            goal_options=tuple((str(k), str(v)) for k, v in spec["goal_options"]),
            price_upper=float(spec["price_upper"]),
        )


def price_upper_bound(price: float, rng: random.Random) -> float | None:
    """The goal's price bound (None when the price is too high for two candidate steps)."""
    steps = [p for p in PRICE_STEPS if p > price][:4]
    if len(steps) < 2:
        return None
    return max(rng.sample(steps, 2))


def option_text(goal_options: tuple[tuple[str, str], ...]) -> str:
    if not goal_options:
        return ""
    return " with " + ", and ".join(f"{name}: {value}" for name, value in goal_options)


def price_text(price_upper: float | None) -> str:
    return "" if price_upper is None else f", and price lower than {price_upper:.2f} dollars"


def product_goals(product: Product, rng: random.Random) -> list[Goal]:
    """All of one goal product's goals; `rng` draws its price bound (one per product, as in WebShop)."""
    if not product.instruction_text or not product.instruction_attributes:
        return []
    bound = price_upper_bound(product.price, rng)
    names = sorted(name for name, values in product.options if values)
    combinations = itertools.product(*(product.option_dict[name] for name in names))
    return [
        Goal(
            asin=product.asin,
            name=product.name,
            query=product.query,
            category=product.category,
            product_category=product.product_category,
            instruction_text=product.instruction_text.strip().rstrip(".")
            + option_text(tuple(zip(names, combination)))
            + price_text(bound),
            attributes=product.instruction_attributes,
            goal_options=tuple(zip(names, combination)),
            price_upper=NO_PRICE_BOUND if bound is None else bound,
        )
        for combination in combinations
    ]

"""WebShop in text mode: search page -> results -> item page (-> description/features/reviews) -> buy.

Each observation is the page's visible text joined by ` [SEP] ` (as WebShop's `text` observation
mode renders it), then a line `Available actions: [...]` listing the valid action strings as a
JSON list (`search[<your query>]` stands for any search on the search page).
Actions are `search[<keywords>]` on the search page and `click[<value>]` for any clickable of the
current page (product ids, option values, `buy now`, `next >`, `< prev`, `back to search`,
`description`, `features`, `reviews`), matched lower-cased. `buy now` ends the episode with
WebShop's reward (`depo.envs.webshop.reward`); reaching `max_steps` first ends it with reward 0.
"""
from __future__ import annotations

import copy
import json
import random
import re
from typing import Any

import polars as pl

from depo.agent.react import AgentTurn
from depo.envs.base import StepResult, Task, TaskSuite, TextEnv, check_split
from depo.envs.webshop.catalog import Product, generate_catalog, products_from_frame
from depo.envs.webshop.goals import Goal, product_goals
from depo.envs.webshop.reward import webshop_reward
from depo.envs.webshop.search import SearchIndex

ENV_NAME = "webshop"
PRODUCT_WINDOW = 10
SEARCH_TEMPLATE = "search[<your query>]"
BACK_TO_SEARCH = "back to search"
NEXT_PAGE = "next >"
PREV_PAGE = "< prev"
BUY_NOW = "buy now"
SUB_PAGES = ("description", "features", "reviews")
_ACTION = re.compile(r"^(search|click)\[(.*)\]$", re.IGNORECASE | re.DOTALL)

SYSTEM_PROMPT = """You are shopping on WebShop for the item described in the instruction.
Pages: the search page (type a query), the results page (10 products per page, each an id, a title and a price, \
with `next >` / `< prev` to page and `back to search`), the item page (title, price, option values such as size \
or color, `description`, `features`, `reviews`, `buy now`; `< prev` goes back to the results), and the \
description/features/reviews pages (`< prev` returns to the item).
Each observation shows the page text separated by [SEP], then the available actions.
Actions: search[<keywords>] on the search page; click[<value>] for anything clickable on the current page \
(a product id, an option value, buy now, next >, < prev, back to search, description, features, reviews).
Choose every option the instruction asks for before clicking buy now; buying ends the episode and is scored \
by how well the product, its options and its price match the instruction.
Reply in exactly this format:
Thought: <one short line of reasoning>
Action: <one action>"""


class WebShopEnv(TextEnv):
    """One shopping episode at a time over a suite's products and its shared search index."""

    name = ENV_NAME

    def __init__(self, products: list[Product], index: SearchIndex, max_steps: int = 15):
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.products = products
        self.index = index
        self.max_steps = max_steps
        self._position = {p.asin.lower(): i for i, p in enumerate(products)}
        self.goal: Goal | None = None
        self._done = True
        self._steps = 0

    # -- state ------------------------------------------------------------------------------------
    def reset(self, task: Task) -> str:
        if task.env != ENV_NAME:
            raise ValueError(f"task {task.task_id!r} is for env {task.env!r}, not {ENV_NAME!r}")
        self.goal = Goal.from_spec(task.spec)
        self.page = "search"
        self.results: tuple[int, ...] = ()
        self.page_no = 1
        self.product: int | None = None
        self.chosen_options: dict[str, str] = {}
        # Ids of every item page opened this episode (WebShop's session `asins`), oldest first.
        self.visited: list[str] = []
        self.n_searches = 0
        self._steps = 0
        self._done = False
        self._final_reward = 0.0
        return self.observation()

    def clone(self) -> "WebShopEnv":
        twin = copy.copy(self)  # shares products and index; copies the per-episode containers below
        twin.chosen_options = dict(self.chosen_options)
        twin.visited = list(self.visited)
        return twin

    @property
    def steps_taken(self) -> int:
        return self._steps

    @property
    def done(self) -> bool:
        return self._done

    @property
    def current_product(self) -> Product | None:
        return None if self.product is None else self.products[self.product]

    @property
    def n_result_pages(self) -> int:
        return max(1, -(-len(self.results) // PRODUCT_WINDOW))

    def page_results(self) -> list[Product]:
        start = (self.page_no - 1) * PRODUCT_WINDOW
        return [self.products[i] for i in self.results[start:start + PRODUCT_WINDOW]]

    # -- pages ------------------------------------------------------------------------------------
    def _clickables(self) -> dict[str, tuple[str, Any]]:
        """Lower-cased clickable text -> (kind, payload) on the current page, in page order."""
        clickables: dict[str, tuple[str, Any]] = {}
        if self.page == "results":
            clickables[BACK_TO_SEARCH] = ("search_page", None)
            if self.page_no > 1:
                clickables[PREV_PAGE] = ("page", self.page_no - 1)
            if self.page_no < self.n_result_pages:
                clickables[NEXT_PAGE] = ("page", self.page_no + 1)
            for product in self.page_results():
                clickables[product.asin.lower()] = ("item", self._position[product.asin.lower()])
        elif self.page == "item":
            clickables[BACK_TO_SEARCH] = ("search_page", None)
            clickables[PREV_PAGE] = ("results", None)
            for option_type, values in self.current_product.options:
                for value in values:
                    # A value spelled like a button (or already offered by another type) stays unclickable.
                    clickables.setdefault(value.lower(), ("option", (option_type, value)))
            for sub_page in SUB_PAGES:
                clickables[sub_page] = ("sub_page", sub_page)
            clickables[BUY_NOW] = ("buy", None)
        elif self.page in SUB_PAGES:
            clickables[BACK_TO_SEARCH] = ("search_page", None)
            clickables[PREV_PAGE] = ("item_page", None)
        return clickables

    def available_actions(self) -> list[str]:
        if self._done:
            return []
        if self.page == "search":
            return [SEARCH_TEMPLATE]
        return [f"click[{text}]" for text in self._clickables()]

    def page_text(self) -> list[str]:
        header = ["Instruction:", self.goal.instruction_text]
        if self.page == "search":
            return ["WebShop", *header, "Search"]
        if self.page == "done":
            return ["Thank you for shopping with us!", "Your score (min 0.0, max 1.0)", f"{self._final_reward:.2f}"]
        texts = [*header, "Back to Search"]
        if self.page == "results":
            texts.append(f"Page {self.page_no} (Total results: {len(self.results)})")
            if self.page_no > 1:
                texts.append("< Prev")
            if self.page_no < self.n_result_pages:
                texts.append("Next >")
            for product in self.page_results():
                texts += [product.asin, product.name, product.price_tag]
            return texts
        product = self.current_product
        texts.append("< Prev")
        if self.page == "item":
            for option_type, values in product.options:
                texts += [option_type, *values]
            rating = "N.A." if product.rating is None else f"{product.rating}"
            texts += [product.name, f"Price: {product.price_tag}", f"Rating: {rating}",
                      "Description", "Features", "Reviews", "Buy Now"]
        elif self.page == "description":
            texts.append(product.description)
        elif self.page == "features":
            texts += list(product.bullet_points)
        else:
            texts += [f"{score} stars: {body}" for score, body in product.reviews]
        return texts

    def observation(self) -> str:
        if self.goal is None:
            raise RuntimeError("call reset(task) before reading an observation")
        actions = json.dumps(self.available_actions(), ensure_ascii=False)
        return " [SEP] ".join(t for t in self.page_text() if t) + f"\nAvailable actions: {actions}"

    # -- transitions ------------------------------------------------------------------------------
    def step(self, action: str) -> StepResult:
        if self._done:
            raise RuntimeError("the episode is over; call reset(task) first")
        self._steps += 1
        error = self._apply(action)
        info: dict[str, Any] = {"valid_action": error is None}
        reward = 0.0
        if self.page == "done":
            reward = self._final_reward
            info.update(self._purchase_info)
        elif self._steps >= self.max_steps:
            self._done = True
            info.update(success=False, truncated=True)
        observation = self.observation()
        if error is not None:
            observation = f"Invalid action: {error}\n{observation}"
        return StepResult(observation=observation, reward=reward, done=self._done, info=info)

    def _apply(self, action: str) -> str | None:
        """Change the page for `action`; the reason it is invalid (state unchanged) or None."""
        match = _ACTION.match(action.strip()) if isinstance(action, str) else None
        if match is None:
            return f"{action!r} is not search[<keywords>] or click[<value>]."
        verb, argument = match.group(1).lower(), match.group(2).strip().lower()
        if verb == "search":
            if self.page != "search":
                return "search is only possible on the search page; click[back to search] first."
            if not argument:
                return "search needs keywords, e.g. search[red cotton t-shirt]."
            self.results = self.index.search(argument)
            self.n_searches += 1
            self._show_results(1)
            return None
        target = self._clickables().get(argument)
        if target is None:
            return f"{argument!r} is not clickable on this page."
        kind, payload = target
        if kind == "search_page":
            self.page, self.product, self.chosen_options = "search", None, {}
        elif kind == "page":
            self._show_results(payload)
        elif kind == "results":
            self._show_results(self.page_no)
        elif kind == "item":
            self.page, self.product = "item", payload
            self.visited.append(self.products[payload].asin)
        elif kind == "option":
            option_type, value = payload
            self.chosen_options[option_type] = value
        elif kind == "sub_page":
            self.page = payload
        elif kind == "item_page":
            self.page = "item"
        else:
            self._buy()
        return None

    def _show_results(self, page_no: int) -> None:
        # As in WebShop, (re)showing results drops the item and the options chosen on it.
        self.page, self.page_no, self.product, self.chosen_options = "results", page_no, None, {}

    def _buy(self) -> None:
        product = self.current_product
        reward, parts = webshop_reward(product, self.goal, self.chosen_options)
        self.page, self._done, self._final_reward = "done", True, reward
        self._purchase_info = {
            "success": reward == 1.0,
            "reward_parts": parts,
            "purchased": {"asin": product.asin, "options": dict(self.chosen_options), "price": product.price},
        }

    def expert_turn(self) -> AgentTurn:
        from depo.envs.webshop.expert import expert_turn

        return expert_turn(self)


class WebShopSuite(TaskSuite):
    """WebShop's synthetic goals over a product table; train and test never share a goal product.

    `products` is a table in `catalog.PRODUCT_SCHEMA` (None: `generate_catalog(n_catalog_products,
    catalog_seed)`). Goal products are shuffled with `goal_seed` and the first `test_fraction` of
    them give the test goals; the search index is built once here and shared by every env.
    """

    name = ENV_NAME
    system_prompt = SYSTEM_PROMPT

    def __init__(
        self,
        products: pl.DataFrame | None = None,
        max_steps: int = 15,
        n_catalog_products: int = 300,
        catalog_seed: int = 0,
        goal_seed: int = 233,
        test_fraction: float = 0.2,
    ):
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        frame = generate_catalog(n_catalog_products, catalog_seed) if products is None else products
        self.products = products_from_frame(frame)
        self.max_steps = max_steps
        self.index = SearchIndex(self.products)
        rng = random.Random(goal_seed)
        goals_by_product = {}
        for product in self.products:
            goals = product_goals(product, rng)
            if goals:
                goals_by_product[product.asin] = goals
        if len(goals_by_product) < 2:
            raise ValueError(
                f"products: {len(goals_by_product)} goal product(s) (with instruction_text and "
                "instruction_attributes); at least 2 are needed for disjoint train and test splits"
            )
        asins = sorted(goals_by_product)
        rng.shuffle(asins)
        n_test = min(len(asins) - 1, max(1, round(test_fraction * len(asins))))
        self.goal_products = {"test": asins[:n_test], "train": asins[n_test:]}
        self.goals_by_product = goals_by_product

    def n_goals(self, split: str) -> int:
        check_split(split)
        return sum(len(self.goals_by_product[a]) for a in self.goal_products[split])

    def make_tasks(self, split: str, n: int, seed: int) -> list[Task]:
        """`n` distinct goals of `split`, drawn round-robin over shuffled goal products (so one
        product with many option combinations does not dominate)."""
        check_split(split)
        available = self.n_goals(split)
        if not isinstance(n, int) or n < 0 or n > available:
            raise ValueError(f"n must be an integer in [0, {available}] for the {split} split, got {n!r}")
        rng = random.Random(f"{split}:{seed}")
        queues = []
        for asin in rng.sample(self.goal_products[split], len(self.goal_products[split])):
            order = list(range(len(self.goals_by_product[asin])))
            rng.shuffle(order)
            queues.append((asin, order))
        tasks: list[Task] = []
        while len(tasks) < n:
            for asin, order in queues:
                if order and len(tasks) < n:
                    index = order.pop()
                    goal = self.goals_by_product[asin][index]
                    tasks.append(Task(env=ENV_NAME, task_id=f"webshop/{asin}/{index}", split=split,
                                      seed=seed, spec=goal.to_spec()))
        return tasks

    def make_env(self) -> WebShopEnv:
        return WebShopEnv(self.products, self.index, max_steps=self.max_steps)

"""The scripted WebShop expert: search with the instruction's key words, open the result whose
visible title and price fit best, check its options and price, choose the requested options, buy.

It reads the goal only for what the instruction text states (attributes, option values, price
bound) and judges products only by what the pages show (result titles and prices, the item's
option values and price); it never looks at the goal's product id.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rapidfuzz import fuzz, utils

from depo.agent.react import AgentTurn
from depo.envs.webshop.env import BACK_TO_SEARCH, BUY_NOW, NEXT_PAGE, PREV_PAGE, SUB_PAGES
from depo.envs.webshop.goals import Goal, option_text, price_text
from depo.envs.webshop.search import tokenize

if TYPE_CHECKING:
    from depo.envs.webshop.catalog import Product
    from depo.envs.webshop.env import WebShopEnv

# Instruction words that say "I want" rather than what is wanted.
REQUEST_WORDS = frozenset("i need am looking find me want to buy that is with and for a an the some".split())
# Item pages the expert opens per episode before buying the best fit it has seen.
MAX_ITEMS_OPENED = 3
_DOLLARS = re.compile(r"\$([\d.]+)")


def request_text(goal: Goal) -> str:
    """The instruction without its option and price clauses."""
    text = goal.instruction_text
    bound = None if goal.price_upper >= 1_000_000 else goal.price_upper
    for suffix in (price_text(bound), option_text(goal.goal_options)):
        if suffix and text.endswith(suffix):
            text = text[: -len(suffix)]
    return text


def search_keywords(goal: Goal, retry: bool) -> str:
    words = [w for w in re.findall(r"[a-z0-9&'-]+", request_text(goal).lower()) if w not in REQUEST_WORDS]
    if retry:
        # A second search drops the attribute words and keeps what kind of product it is.
        attribute_words = {w for attribute in goal.attributes for w in attribute.lower().split()}
        words = [w for w in words if w not in attribute_words] or words
    return " ".join(words)


def shown_price(price_tag: str) -> float:
    prices = [float(p) for p in _DOLLARS.findall(price_tag) if p.replace(".", "", 1).isdigit()]
    return min(prices) if prices else float("inf")


def title_fit(goal: Goal, product: Product) -> float:
    """How well a result fits the request, from its title and price on the results page: the kind
    of product counts double (the request's words that are not attribute words), then each
    requested attribute the title states, and a price over the bound rules it out."""
    attribute_words = set(tokenize(" ".join(goal.attributes)))
    kind_words = set(tokenize(request_text(goal))) - attribute_words - REQUEST_WORDS
    words = set(tokenize(product.name))
    title = product.name.lower()
    score = 2.0 * len(kind_words & words) / max(1, len(kind_words))
    score += sum(attribute in title for attribute in goal.attributes) / max(1, len(goal.attributes))
    if shown_price(product.price_tag) > goal.price_upper:
        score -= 5.0
    return score


def matching_value(goal_value: str, values: tuple[str, ...]) -> str | None:
    wanted = goal_value.lower()
    for value in values:
        if value.lower() == wanted:
            return value
    best = max(values, key=lambda v: fuzz.ratio(v, wanted, processor=utils.default_process), default=None)
    if best is not None and fuzz.ratio(best, wanted, processor=utils.default_process) > 85:
        return best
    return None


def option_plan(goal: Goal, product: Product) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(option type, value) clicks that give the goal's options, and the goal options not offered."""
    offered = {name.lower(): (name, values) for name, values in product.options}
    clicks, missing = [], []
    for goal_type, goal_value in goal.goal_options:
        name, values = offered.get(goal_type.lower(), (None, ()))
        value = matching_value(goal_value, values) if name else None
        if value is None:
            missing.append((goal_type, goal_value))
        else:
            clicks.append((name, value))
    return clicks, missing


def expert_turn(env: WebShopEnv) -> AgentTurn:
    if env.done:
        raise RuntimeError("the episode is over; the expert has no action")
    goal = env.goal
    if env.page == "search":
        keywords = search_keywords(goal, retry=env.n_searches > 0)
        return AgentTurn(f"I should search for {keywords}.", f"search[{keywords}]")
    if env.page in SUB_PAGES:
        return AgentTurn("I have read this; back to the item.", f"click[{PREV_PAGE}]")
    if env.page == "results":
        return _results_turn(env, goal)
    return _item_turn(env, goal)


def _results_turn(env: WebShopEnv, goal: Goal) -> AgentTurn:
    shown = env.page_results()
    if not shown:
        return AgentTurn("No results; I will try a broader search.", f"click[{BACK_TO_SEARCH}]")
    unseen = [p for p in shown if p.asin not in env.visited]
    if not unseen and env.page_no < env.n_result_pages:
        return AgentTurn("I have checked the promising items here; next page.", f"click[{NEXT_PAGE}]")
    best = max(unseen or shown, key=lambda p: title_fit(goal, p))
    return AgentTurn(f"{best.asin} ({best.price_tag}) looks closest to what I need.", f"click[{best.asin.lower()}]")


def _item_turn(env: WebShopEnv, goal: Goal) -> AgentTurn:
    product = env.current_product
    clicks, missing = option_plan(goal, product)
    too_expensive = shown_price(product.price_tag) > goal.price_upper
    steps_to_buy = len(clicks) + 1
    # Looking elsewhere costs a step back, a click and the options; only worth it with steps to spare.
    can_look_elsewhere = (len(env.visited) < MAX_ITEMS_OPENED
                          and env.steps_taken + 2 + steps_to_buy < env.max_steps)
    if (missing or too_expensive) and can_look_elsewhere:
        reason = "is over my budget" if too_expensive else f"has no {missing[0][0]} {missing[0][1]}"
        return AgentTurn(f"This item {reason}; back to the results.", f"click[{PREV_PAGE}]")
    for option_type, value in clicks:
        if env.chosen_options.get(option_type) != value:
            return AgentTurn(f"I need {option_type} {value}.", f"click[{value.lower()}]")
    return AgentTurn("This item fits and the options are set; buy it.", f"click[{BUY_NOW}]")

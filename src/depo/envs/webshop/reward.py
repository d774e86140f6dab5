"""WebShop's purchase reward (`web_agent_site/engine/goal.py: get_reward`), without spaCy.

    r = (#matched goal attributes + #matched options + [price <= bound])
        / (#goal attributes + #goal options + 1) * r_type

- An attribute matches when token_set_ratio (rapidfuzz, with thefuzz's default lower-casing and
  punctuation stripping) with one of the product's attributes is above 85, or when it is a substring of the title, the bullet points or the description.
- Each chosen option matches when (after colour normalisation) its value equals a goal option value
  (option type `size`) or has token_set_ratio above 85 with one (other types), or when the value is
  a substring of the title, bullet points or description. WebShop counts chosen options, so a
  product with more option types than the goal could score above 1; here the count is capped at
  the number of goal options.
- r_type is 1 when the query is the goal's, at least two breadcrumb levels are shared, or more
  than 20% of the goal title's nouns are in the bought title; otherwise 0.5. It drops to 0.1 when
  that noun share is under 10% and to 0 when it is 0 (whatever the query and breadcrumbs say).

Difference from WebShop: WebShop finds the titles' nouns with spaCy's `en_core_web_lg` tagger,
which is not installable here. `title_nouns` approximates it: lower-cased alphanumeric words
minus stop words, colour/size/number words and a list of common adjectives (and words with typical
adjective/adverb endings). Titles mostly made of product nouns score the same as with spaCy;
titles whose key words are ambiguous (`light`, `fast`) can differ.
"""
from __future__ import annotations

import re
from typing import Any

from rapidfuzz import fuzz, utils

from depo.envs.webshop.catalog import CATEGORY_SEP, Product
from depo.envs.webshop.goals import Goal

MATCH_THRESHOLD = 85
EXACT_MATCH_OPTIONS = ("size",)

# Base colour names; a value containing one as whole words normalises to it (longest name first,
# so that "navy blue" wins over "blue"), as WebShop's `normalize_color` does with its colour list
# (which matches plain substrings, so there "standard" holds "tan").
COLORS = tuple(sorted((
    "black", "white", "gray", "grey", "silver", "gold", "rose gold", "red", "ruby red", "wine red",
    "burgundy", "maroon", "pink", "hot pink", "purple", "violet", "lavender", "blue", "navy", "navy blue",
    "sky blue", "light blue", "dark blue", "royal blue", "teal", "turquoise", "green", "olive",
    "olive green", "army green", "dark green", "light green", "mint green", "yellow", "mustard", "orange",
    "coral", "peach", "brown", "dark brown", "light brown", "coffee", "khaki", "beige", "tan", "camel",
    "nude", "ivory", "cream", "espresso", "walnut", "cherry", "charcoal", "multicolor",
), key=len, reverse=True))

STOPWORDS = frozenset(
    "a an and are as at be but by for from has have in into is it its of on or our that the their this "
    "to with without your you we i me my set pcs pc x".split()
)
# Words spaCy tags as adjectives/adverbs/numbers in product titles, which `title_nouns` drops.
NON_NOUNS = frozenset(
    "free natural organic long short high low dry sensitive fast quick easy heavy light slim relaxed "
    "solid wireless portable new best premium soft hard large small big mini medium extra super ultra "
    "mid non plant based friendly compatible adjustable durable waterproof resistant professional "
    "classic modern casual comfortable lightweight compact smart deep fresh pure gentle sweet dark "
    "hot cold warm cool old young real true full half double single triple multi upgraded advanced "
    "perfect great good nice fine clear thick thin wide narrow tall round square flat smooth daily "
    "all every each other more most many much s m l xl xxl xs black white gray grey silver red pink "
    "purple blue navy green yellow brown beige khaki ivory burgundy multicolor".split()
)
_NON_NOUN_ENDINGS = ("ous", "ful", "ive", "less", "able", "ible", "ly")
_WORD = re.compile(r"[a-z0-9]+")


_COLOR_PATTERNS = tuple((color, re.compile(rf"\b{re.escape(color)}\b")) for color in COLORS)


def normalize_color(value: str) -> str:
    lowered = value.lower()
    for color, pattern in _COLOR_PATTERNS:
        if pattern.search(lowered):
            return color
    return value


def title_nouns(title: str) -> list[str]:
    """The title's noun-like words (a spaCy-free stand-in for WebShop's NOUN/PROPN tokens)."""
    return [
        word for word in _WORD.findall(title.lower())
        if word not in STOPWORDS and word not in NON_NOUNS and not any(ch.isdigit() for ch in word)
        and not word.endswith(_NON_NOUN_ENDINGS)
    ]


def type_reward(product: Product, goal: Goal) -> dict[str, Any]:
    query_match = product.query == goal.query
    bought_levels = {level.strip() for level in product.product_category.split(CATEGORY_SEP.strip())}
    goal_levels = {level.strip() for level in goal.product_category.split(CATEGORY_SEP.strip())}
    category_match = len(bought_levels & goal_levels) >= 2
    desired = title_nouns(goal.name)
    bought = title_nouns(product.name)
    title_score = 0.2 if not desired else len(set(bought) & set(desired)) / len(desired)
    r_type = 1.0 if (query_match or category_match or title_score > 0.2) else 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {"r_type": r_type, "query_match": query_match, "category_match": category_match,
            "title_score": title_score}


def _in_text(phrase: str, product: Product) -> bool:
    return (
        phrase in product.name.lower()
        or phrase in " ".join(product.bullet_points).lower()
        or phrase in product.description.lower()
    )


def attribute_matches(product: Product, goal_attributes: tuple[str, ...]) -> int:
    matches = 0
    for goal_attribute in goal_attributes:
        if any(fuzz.token_set_ratio(attribute, goal_attribute, processor=utils.default_process) > MATCH_THRESHOLD
               for attribute in product.attributes):
            matches += 1
        elif _in_text(goal_attribute, product):
            matches += 1
    return matches


def option_matches(product: Product, goal_values: list[str], chosen: dict[str, str]) -> int:
    goal_values = [normalize_color(v) for v in goal_values]
    matches = 0
    for option_type, raw_value in chosen.items():
        value = normalize_color(raw_value)
        if option_type.lower() in EXACT_MATCH_OPTIONS:
            matched = value in goal_values
        else:
            matched = any(fuzz.token_set_ratio(g, value, processor=utils.default_process) > MATCH_THRESHOLD
                          for g in goal_values)
        if matched or _in_text(value, product):
            matches += 1
    return min(matches, len(goal_values))


def webshop_reward(product: Product, goal: Goal, chosen_options: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """The reward for buying `product` with `chosen_options` (type -> value), and its parts."""
    type_parts = type_reward(product, goal)
    price_ok = product.price <= goal.price_upper
    n_attributes = attribute_matches(product, goal.attributes)
    goal_values = [value for _, value in goal.goal_options]
    n_options = option_matches(product, goal_values, chosen_options)
    denominator = len(goal.attributes) + len(goal_values) + 1
    reward = (n_attributes + n_options + int(price_ok)) / denominator * type_parts["r_type"]
    parts = {
        **type_parts,
        "r_attr": n_attributes / len(goal.attributes) if goal.attributes else None,
        "r_option": n_options / len(goal_values) if goal_values else None,
        "r_price": price_ok,
        "n_attr_matches": n_attributes,
        "n_option_matches": n_options,
        "w_attr": len(goal.attributes) / denominator,
        "w_option": len(goal_values) / denominator,
        "w_price": 1 / denominator,
    }
    return reward, parts

"""WebShop: reward parts, search, pages and actions, clone, generated catalog, tasks, expert."""
from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depo.envs import build_suite
from depo.envs.base import tasks_from_records, tasks_to_records
from depo.envs.webshop import (
    PRODUCT_SCHEMA,
    Goal,
    Product,
    SearchIndex,
    WebShopSuite,
    generate_catalog,
    validate_products,
    webshop_reward,
)
from depo.envs.webshop.catalog import products_from_frame
from depo.envs.webshop.goals import price_upper_bound, product_goals
from depo.envs.webshop.reward import normalize_color, title_nouns
from depo.rollout.episodes import run_policy


def make_product(**overrides) -> Product:
    fields = dict(
        asin="B000000001",
        name="Acme Sulfate Free Tea Tree Shampoo",
        category="beauty",
        query="shampoo",
        product_category="Beauty & Personal Care › Hair Care › Shampoos",
        pricing=(12.99,),
        price=12.99,
        price_tag="$12.99",
        bullet_points=("Lathers richly",),
        description="A gentle everyday wash.",
        attributes=("sulfate free", "tea tree", "dry hair"),
        options=(("scent", ("lavender", "coconut")), ("size", ("8 fl oz", "16 fl oz"))),
        reviews=(),
        rating=None,
        instruction_text="i need sulfate free tea tree shampoo",
        instruction_attributes=("sulfate free", "tea tree"),
    )
    fields.update(overrides)
    return Product(**fields)


def make_goal(**overrides) -> Goal:
    fields = dict(
        asin="B000000001",
        name="Acme Sulfate Free Tea Tree Shampoo",
        query="shampoo",
        category="beauty",
        product_category="Beauty & Personal Care › Hair Care › Shampoos",
        instruction_text="i need sulfate free tea tree shampoo with scent: lavender, and size: 8 fl oz",
        attributes=("sulfate free", "tea tree"),
        goal_options=(("scent", "lavender"), ("size", "8 fl oz")),
        price_upper=20.0,
    )
    fields.update(overrides)
    return Goal(**fields)


GOAL_CHOICE = {"scent": "lavender", "size": "8 fl oz"}


@pytest.fixture(scope="module")
def suite() -> WebShopSuite:
    return WebShopSuite(n_catalog_products=300, catalog_seed=0)


@pytest.fixture
def env(suite):
    env = suite.make_env()
    env.reset(suite.make_tasks("test", 1, seed=0)[0])
    return env


# -- reward ---------------------------------------------------------------------------------------
def test_full_match_scores_one_with_every_part():
    reward, parts = webshop_reward(make_product(), make_goal(), GOAL_CHOICE)
    assert reward == 1.0
    assert parts["r_attr"] == 1.0 and parts["r_option"] == 1.0 and parts["r_price"] is True
    assert parts["r_type"] == 1.0 and parts["query_match"] and parts["category_match"]
    assert parts["n_attr_matches"] == 2 and parts["n_option_matches"] == 2


def test_wrong_option_costs_exactly_one_share():
    reward, parts = webshop_reward(make_product(), make_goal(), {"scent": "coconut", "size": "8 fl oz"})
    assert reward == pytest.approx(1 - 1 / 5)  # 2 attributes + 2 options + price
    assert parts["r_option"] == 0.5


def test_unchosen_options_do_not_count():
    reward, _ = webshop_reward(make_product(), make_goal(), {})
    assert reward == pytest.approx(3 / 5)


def test_size_needs_an_exact_value():
    reward, _ = webshop_reward(make_product(), make_goal(), {"scent": "lavender", "size": "16 fl oz"})
    assert reward == pytest.approx(4 / 5)


def test_over_price_loses_the_price_share():
    reward, parts = webshop_reward(make_product(price=25.0), make_goal(), GOAL_CHOICE)
    assert reward == pytest.approx(4 / 5)
    assert parts["r_price"] is False


def test_missing_attribute_loses_its_share_and_text_mentions_count():
    product = make_product(attributes=("sulfate free",), name="Acme Sulfate Free Shampoo")
    assert webshop_reward(product, make_goal(), GOAL_CHOICE)[0] == pytest.approx(4 / 5)
    mentioned = make_product(attributes=(), name="Acme Shampoo",
                             bullet_points=("Sulfate free formula", "With tea tree oil"))
    assert webshop_reward(mentioned, make_goal(), GOAL_CHOICE)[0] == 1.0


def test_attributes_match_fuzzily():
    product = make_product(attributes=("Sulfate-Free", "tea trees"), name="Acme Shampoo")
    _, parts = webshop_reward(product, make_goal(), GOAL_CHOICE)
    assert parts["n_attr_matches"] == 2


def test_colour_values_are_normalised_before_matching():
    assert normalize_color("Dark Navy Blue") == "navy blue"
    assert normalize_color("standard") == "standard"  # whole words only
    product = make_product(options=(("color", ("navy blue", "red")),))
    goal = make_goal(goal_options=(("color", "navy blue"),))
    assert webshop_reward(product, goal, {"color": "dark navy blue"})[0] == 1.0


def test_wrong_type_scales_the_reward():
    unrelated = make_product(name="Zeta Stainless Garden Hose", query="garden hose",
                             product_category="Patio, Lawn & Garden › Watering Equipment › Hoses",
                             attributes=("sulfate free", "tea tree"))
    reward, parts = webshop_reward(unrelated, make_goal(), GOAL_CHOICE)
    assert parts["title_score"] == 0.0 and parts["r_type"] == 0.0 and reward == 0.0
    # One of the goal title's five nouns in common (20%, not above it): neither query nor breadcrumb match -> halved.
    related = make_product(name="Zeta Hose Shampoo Nozzle Pump Kit Adapter", query="hose kit",
                           product_category="Patio, Lawn & Garden › Watering Equipment › Hoses")
    reward, parts = webshop_reward(related, make_goal(), GOAL_CHOICE)
    assert parts["r_type"] == 0.5
    assert reward == pytest.approx(0.5)


def test_title_nouns_drop_adjectives_numbers_and_stop_words():
    assert title_nouns("Acme Sulfate Free Tea Tree Shampoo for Dry Hair, 16 oz") == [
        "acme", "sulfate", "tea", "tree", "shampoo", "hair", "oz"]


def test_price_bound_is_above_the_price_and_absent_when_too_expensive():
    import random

    rng = random.Random(0)
    for price in (3.5, 19.99, 42.0, 955.0):
        bound = price_upper_bound(price, rng)
        assert price < bound <= (price // 10 + 4) * 10
    assert price_upper_bound(985.0, rng) is None


def test_goals_cover_every_option_combination_with_webshop_text():
    import random

    goals = product_goals(make_product(), random.Random(0))
    assert len(goals) == 4
    assert {g.goal_options for g in goals} == {
        (("scent", s), ("size", z)) for s in ("lavender", "coconut") for z in ("8 fl oz", "16 fl oz")}
    text = goals[0].instruction_text
    assert text.startswith("i need sulfate free tea tree shampoo with scent: ")
    assert text.endswith(f", and price lower than {goals[0].price_upper:.2f} dollars")
    assert product_goals(make_product(instruction_text=None), random.Random(0)) == []


# -- search ---------------------------------------------------------------------------------------
def test_search_finds_each_product_by_its_title(suite):
    for position, product in enumerate(suite.products):
        assert position in suite.index.search(product.name)[:10], product.name


def test_search_returns_at_most_fifty_and_nothing_for_unknown_words(suite):
    assert len(suite.index.search("black")) == 50
    assert suite.index.search("zyzzyva qwerty") == ()
    index = SearchIndex([make_product(name="Red Shirts"), make_product(asin="B2", name="Blue Lamp")])
    assert index.search("red shirt") == (0,)


# -- pages and actions ----------------------------------------------------------------------------
def test_search_page_observation_and_actions(suite):
    env = suite.make_env()
    task = suite.make_tasks("test", 1, seed=0)[0]
    observation = env.reset(task)
    assert observation.startswith(f"WebShop [SEP] Instruction: [SEP] {task.spec['instruction_text']} [SEP] Search")
    assert observation.endswith('Available actions: ["search[<your query>]"]')
    assert env.available_actions() == ["search[<your query>]"]
    assert env.steps_taken == 0


def _listed(env) -> list[str]:
    return [p.asin for p in env.page_results()]


def test_results_are_paged_by_ten_with_next_and_prev(env):
    result = env.step("search[black]")
    assert result.info["valid_action"] and not result.done
    assert "Page 1 (Total results: 50)" in result.observation
    first = _listed(env)
    assert len(first) == 10 and "click[< prev]" not in env.available_actions()
    assert env.available_actions()[:2] == ["click[back to search]", "click[next >]"]
    assert all(f"click[{asin.lower()}]" in env.available_actions() for asin in first)
    second = env.step("click[Next >]")
    assert "Page 2 (Total results: 50)" in second.observation
    assert set(_listed(env)).isdisjoint(first)
    env.step("click[< prev]")
    assert _listed(env) == first
    for _ in range(4):
        env.step("click[next >]")
    assert env.page_no == 5 and "click[next >]" not in env.available_actions()


def test_item_page_options_sub_pages_and_back(env):
    env.step("search[black]")
    asin = _listed(env)[0]
    item = env.step(f"click[{asin}]")  # ids match case-insensitively
    product = env.current_product
    assert product.asin == asin and product.name in item.observation
    assert f"Price: {product.price_tag}" in item.observation and "Buy Now" in item.observation
    option_type, values = product.options[0]
    assert f"{option_type} [SEP] {values[0]}" in item.observation
    env.step(f"click[{values[-1]}]")
    assert env.chosen_options == {option_type: values[-1]}
    features = env.step("click[features]")
    assert product.bullet_points[0] in features.observation
    assert env.available_actions() == ["click[back to search]", "click[< prev]"]
    env.step("click[< prev]")
    assert env.page == "item" and env.chosen_options == {option_type: values[-1]}
    description = env.step("click[description]")
    assert product.description in description.observation
    env.step("click[< prev]")
    env.step("click[< prev]")
    assert env.page == "results" and env.chosen_options == {}
    env.step("click[back to search]")
    assert env.available_actions() == ["search[<your query>]"]
    assert env.steps_taken == 9


@pytest.mark.parametrize("action", [
    "buy it", "click[not a button]", "click[buy now]", "search[]", "click[]", "Action: click[next >]", "",
])
def test_invalid_actions_change_nothing_but_the_step_count(env, action):
    env.step("search[black]")
    before = env.observation()
    result = env.step(action)
    assert result.info == {"valid_action": False}
    assert result.reward == 0.0 and not result.done
    assert result.observation.startswith("Invalid action: ")
    assert result.observation.endswith(before)
    assert env.observation() == before and env.steps_taken == 2


def test_search_is_only_possible_on_the_search_page(env):
    env.step("search[black]")
    black = env.results
    result = env.step("search[white]")
    assert not result.info["valid_action"] and "only possible on the search page" in result.observation
    assert env.results == black and env.n_searches == 1


def test_step_limit_ends_with_zero_reward():
    short = WebShopSuite(products=generate_catalog(40, 1), max_steps=3)
    env = short.make_env()
    env.reset(short.make_tasks("test", 1, seed=0)[0])
    results = [env.step("click[nothing]") for _ in range(3)]
    assert [r.done for r in results] == [False, False, True]
    assert results[-1].reward == 0.0 and results[-1].info["success"] is False
    with pytest.raises(RuntimeError, match="reset"):
        env.step("search[x]")


def test_buying_ends_with_the_webshop_reward_and_its_parts(suite):
    env = suite.make_env()
    task = suite.make_tasks("test", 1, seed=3)[0]
    env.reset(task)
    env.step(f"search[{task.spec['name']}]")
    env.step(f"click[{task.spec['asin']}]")
    for _, value in task.spec["goal_options"][:-1]:  # leave the last option unchosen
        env.step(f"click[{value}]")
    result = env.step("click[buy now]")
    expected, parts = webshop_reward(env.current_product, Goal.from_spec(task.spec), env.chosen_options)
    assert result.done and result.reward == expected and result.info["reward_parts"] == parts
    n_options = len(task.spec["goal_options"])
    assert result.reward == pytest.approx(1 - 1 / (len(task.spec["attributes"]) + n_options + 1))
    assert result.info["success"] is False and result.info["purchased"]["asin"] == task.spec["asin"]
    assert env.available_actions() == []
    assert "Your score (min 0.0, max 1.0)" in result.observation


@settings(max_examples=60, deadline=None)
@given(action=st.text(max_size=40) | st.sampled_from(["click[", "search[", "click[[x]]", "CLICK[NEXT >]"]))
def test_any_action_text_never_raises(suite, action):
    env = suite.make_env()
    env.reset(suite.make_tasks("train", 1, seed=0)[0])
    env.step("search[black]")
    result = env.step(action)
    assert isinstance(result.info["valid_action"], bool) and env.steps_taken == 2


# -- clone ----------------------------------------------------------------------------------------
def test_clone_is_equivalent_and_independent(env):
    env.step("search[black]")
    env.step(f"click[{_listed(env)[0]}]")
    option_type, values = env.current_product.options[0]
    env.step(f"click[{values[0]}]")
    twin = env.clone()
    assert twin.observation() == env.observation() and twin.steps_taken == env.steps_taken
    assert twin.index is env.index and twin.products is env.products
    for action in ("click[features]", "click[< prev]", f"click[{values[-1]}]"):
        assert twin.step(action).observation == env.clone().step(action).observation
        env.step(action)
    twin.step("click[< prev]")
    assert env.page == "item" and env.chosen_options == {option_type: values[-1]}
    assert twin.page == "results" and twin.chosen_options == {}
    assert env.steps_taken == 6 and twin.steps_taken == 7


# -- generated catalog ----------------------------------------------------------------------------
def test_generated_catalog_is_deterministic_and_valid():
    first = generate_catalog(120, seed=4)
    assert first.equals(generate_catalog(120, seed=4))
    assert not first.equals(generate_catalog(120, seed=5))
    validate_products(first)
    assert first.height == 120 and dict(first.schema) == PRODUCT_SCHEMA
    assert set(first["category"]) == {"beauty", "food", "fashion", "furniture", "electronics"}
    goal_rows = first.filter(pl.col("instruction_text").is_not_null())
    assert 0.2 < goal_rows.height / first.height < 0.6
    for row in goal_rows.iter_rows(named=True):
        assert set(row["instruction_attributes"]) <= set(row["attributes"])


def test_generated_catalog_has_near_misses_for_its_goals():
    products = products_from_frame(generate_catalog(200, seed=0))
    goals = [p for p in products if p.instruction_text]
    same_type = {g.asin: [p for p in products if p.query == g.query and p.asin != g.asin] for g in goals}
    assert sum(bool(v) for v in same_type.values()) > 0.8 * len(goals)
    # Some same-type products lack a requested attribute, some are far over the goal's price.
    lacking = sum(any(not set(g.instruction_attributes) <= set(p.attributes) for p in same_type[g.asin])
                  for g in goals)
    pricier = sum(any(p.price > g.price + 40 for p in same_type[g.asin]) for g in goals)
    assert lacking > 0.2 * len(goals) and pricier > 0.2 * len(goals)


def test_catalog_survives_parquet_and_feeds_build_suite(tmp_path):
    frame = generate_catalog(60, seed=0)
    frame.write_parquet(tmp_path / "products.parquet")
    loaded = pl.read_parquet(tmp_path / "products.parquet")
    assert loaded.equals(frame)
    suite = build_suite("webshop", {"max_steps": 15}, products=loaded)
    assert suite.name == "webshop" and suite.make_env().max_steps == 15
    assert products_from_frame(loaded) == products_from_frame(frame)


def test_bad_product_tables_are_rejected_by_column():
    frame = generate_catalog(10, seed=0)
    with pytest.raises(ValueError, match="missing column 'price'"):
        validate_products(frame.drop("price"))
    with pytest.raises(ValueError, match="column 'price' is String"):
        validate_products(frame.with_columns(pl.col("price").cast(pl.String)))
    with pytest.raises(ValueError, match="appears more than once"):
        validate_products(pl.concat([frame, frame.head(1)]))
    with pytest.raises(ValueError, match="n_products"):
        generate_catalog(1, seed=0)


# -- tasks ----------------------------------------------------------------------------------------
def test_tasks_are_deterministic_disjoint_and_serialisable(suite):
    train = suite.make_tasks("train", 200, seed=0)
    test = suite.make_tasks("test", 100, seed=0)
    assert [t.task_id for t in test] == [t.task_id for t in suite.make_tasks("test", 100, seed=0)]
    assert [t.task_id for t in test] != [t.task_id for t in suite.make_tasks("test", 100, seed=1)]
    assert len({t.task_id for t in train}) == 200
    assert {t.spec["asin"] for t in train}.isdisjoint({t.spec["asin"] for t in test})
    assert len({t.spec["asin"] for t in test[:10]}) == 10  # round-robin over goal products
    assert tasks_from_records(tasks_to_records(test[:5])) == test[:5]
    spec = json.loads(json.dumps(test[0].spec))
    assert Goal.from_spec(spec).instruction_text == test[0].spec["instruction_text"]
    with pytest.raises(ValueError, match="n must be an integer"):
        suite.make_tasks("test", suite.n_goals("test") + 1, seed=0)
    with pytest.raises(ValueError, match="split"):
        suite.make_tasks("valid", 1, seed=0)


def test_suite_needs_two_goal_products():
    frame = generate_catalog(30, seed=0).with_columns(pl.lit(None, dtype=pl.String).alias("instruction_text"))
    with pytest.raises(ValueError, match="at least 2 are needed"):
        WebShopSuite(products=frame)


# -- policies -------------------------------------------------------------------------------------
def test_expert_reaches_high_reward_on_test_goals(suite):
    tasks = suite.make_tasks("test", 60, seed=0)
    frame = run_policy(suite, tasks, "expert", seed=0, progress=False)
    episodes = frame.unique("trajectory_id")
    assert episodes.height == 60
    assert episodes["final_reward"].mean() >= 0.8
    assert frame["valid_action"].all() and (frame["thought"].str.len_chars() > 0).all()
    assert frame.filter(pl.col("step") == 0)["action"].str.starts_with("search[").all()
    assert frame.filter(pl.col("done"))["action"].eq("click[buy now]").all()


def test_random_policy_runs_with_valid_actions_and_scores_less(suite):
    tasks = suite.make_tasks("test", 20, seed=1)
    random_frame = run_policy(suite, tasks, "random", seed=0, progress=False)
    expert_frame = run_policy(suite, tasks, "expert", seed=0, progress=False)
    assert random_frame["valid_action"].all()
    assert random_frame.unique("trajectory_id")["n_steps"].max() <= suite.max_steps
    assert (random_frame.unique("trajectory_id")["final_reward"].mean()
            < expert_frame.unique("trajectory_id")["final_reward"].mean())

"""WebShop's own product files: loading, validation errors naming file and record, and the real data
in ../shared/data/webshop beside the repository (tests needing a file skip when it is absent)."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from depo.envs.webshop import WebShopSuite, load_webshop_attributes, load_webshop_products, validate_products
from depo.rollout.episodes import run_policy

WEBSHOP_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "webshop"
ATTRIBUTES_FILE = WEBSHOP_DATA / "items_ins_v2_1000.json"
ITEMS_FILE = WEBSHOP_DATA / "items_shuffle_1000.json"


def needs(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"WebShop data file {path} is absent")
    return path


def item_record(asin: str, **overrides) -> dict:
    """A product as items_shuffle_1000.json stores it."""
    record = {
        "asin": asin,
        "name": f"Product {asin} Body Scrub With Tea Tree",
        "category": "beauty",
        "query": " Body Scrub ",
        "product_category": "Beauty & Personal Care › Skin Care › Body › Scrubs & Body Treatments",
        "pricing": "$12.99",
        "small_description": ["Exfoliates gently", "Natural ingredients"],
        "full_description": "A scrub for smooth skin.",
        "customization_options": {
            "Size": [{"value": "8 Ounce", "image": None}, {"value": "16 Ounce", "image": None}],
            "Scent": [{"value": "Mint/Lime", "image": "x.jpg"}],
            "Color": None,
        },
        "images": ["x.jpg"],
    }
    record.update(overrides)
    return record


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_real_attributes_file_loads_and_validates():
    attributes = load_webshop_attributes(needs(ATTRIBUTES_FILE))
    assert len(attributes) == 1000
    with_instruction = {asin: r for asin, r in attributes.items() if "instruction" in r}
    assert with_instruction, "the attributes file should hold synthetic instructions"
    for record in with_instruction.values():
        assert record["instruction_attributes"] and set(record["instruction_attributes"]) <= set(record["attributes"])


def test_loader_joins_real_attributes_onto_items_in_webshop_format(tmp_path):
    attributes = load_webshop_attributes(needs(ATTRIBUTES_FILE))
    goal_asins = [asin for asin, r in attributes.items() if "instruction" in r][:4]
    plain_asin = next(asin for asin, r in attributes.items() if "instruction" not in r and r["attributes"])
    items = [item_record(a) for a in goal_asins]
    items.append(item_record(plain_asin, pricing="$10.00$20.00", small_description="One line", Description="x"))
    items += [item_record(goal_asins[0]), item_record("nan"), item_record("B0TOOLONGASIN")]  # skipped as WebShop does
    frame = load_webshop_products(write_json(tmp_path / "items_shuffle_1000.json", items), ATTRIBUTES_FILE)
    validate_products(frame)
    assert frame["asin"].to_list() == goal_asins + [plain_asin]
    first = frame.row(0, named=True)
    assert first["attributes"] == attributes[goal_asins[0]]["attributes"]
    assert first["instruction_text"] == attributes[goal_asins[0]]["instruction"]
    assert first["query"] == "body scrub" and first["price"] == 12.99 and first["price_tag"] == "$12.99"
    assert first["options"] == [{"name": "size", "values": ["8 ounce", "16 ounce"]},
                                {"name": "scent", "values": ["mint | lime"]}]
    plain = frame.row(4, named=True)
    assert plain["instruction_text"] is None and plain["instruction_attributes"] == []
    assert plain["pricing"] == [10.0, 20.0] and plain["price_tag"] == "$10.0 to $20.0"
    assert 10.0 <= plain["price"] <= 20.0 and plain["bullet_points"] == ["One line"]
    # Goals come from the real instructions; the env runs on them.
    suite = WebShopSuite(products=frame)
    task = suite.make_tasks("test", 1, seed=0)[0]
    assert task.spec["instruction_text"].startswith(attributes[task.spec["asin"]]["instruction"].strip("."))
    env = suite.make_env()
    env.reset(task)
    assert env.step(f"search[{task.spec['name']}]").info["valid_action"]


def test_attributes_beside_the_items_file_are_found_by_default(tmp_path):
    write_json(tmp_path / "items_ins_v2_1000.json", {"B000000001": {"attributes": ["tea tree"]}})
    items = write_json(tmp_path / "items.json", [item_record("B000000001")])
    assert load_webshop_products(items)["attributes"].to_list() == [["tea tree"]]


def test_malformed_attributes_file_names_file_and_record(tmp_path):
    path = write_json(tmp_path / "attrs.json", {
        "B000000001": {"attributes": ["ok"]},
        "B000000002": {"attributes": "not a list"},
    })
    with pytest.raises(ValueError, match=r"attrs\.json: record 'B000000002': 'attributes'"):
        load_webshop_attributes(path)
    path = write_json(tmp_path / "attrs2.json", {"B000000003": {"attributes": [], "instruction": "find it"}})
    with pytest.raises(ValueError, match=r"attrs2\.json: record 'B000000003': 'instruction_attributes'"):
        load_webshop_attributes(path)
    with pytest.raises(ValueError, match=r"attrs3\.json: expected a JSON object"):
        load_webshop_attributes(write_json(tmp_path / "attrs3.json", []))
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        load_webshop_attributes(tmp_path / "broken.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_webshop_attributes(tmp_path / "missing.json")


@pytest.mark.parametrize(("bad", "message"), [
    ({"pricing": 12}, "'pricing'"),
    ({"customization_options": {"Size": [{"image": "x"}]}}, "option 'Size'"),
    ({"small_description": [1, 2]}, "'small_description'"),
    ({"product_category": 7}, "'product_category'"),
])
def test_malformed_items_file_names_file_and_first_bad_record(tmp_path, bad, message):
    write_json(tmp_path / "attrs.json", {})
    items = [item_record("B000000001"), item_record("B000000002", **bad), {"asin": 5}]
    path = write_json(tmp_path / "items.json", items)
    with pytest.raises(ValueError, match=r"items\.json: record 1 \(asin 'B000000002'\)") as error:
        load_webshop_products(path, tmp_path / "attrs.json")
    assert message in str(error.value)


def test_items_missing_a_field_or_not_a_list_are_rejected(tmp_path):
    write_json(tmp_path / "attrs.json", {})
    record = item_record("B000000001")
    del record["full_description"]
    with pytest.raises(ValueError, match=r"record 0 .*missing 'full_description' / 'Description'"):
        load_webshop_products(write_json(tmp_path / "items.json", [record]), tmp_path / "attrs.json")
    with pytest.raises(ValueError, match=r"items2\.json: expected a JSON list"):
        load_webshop_products(write_json(tmp_path / "items2.json", {"a": 1}), tmp_path / "attrs.json")


def test_real_catalog_runs_the_expert():
    frame = load_webshop_products(needs(ITEMS_FILE), needs(ATTRIBUTES_FILE))
    validate_products(frame)
    assert frame.height > 900 and frame.filter(pl.col("instruction_text").is_not_null()).height > 300
    suite = WebShopSuite(products=frame)
    tasks = suite.make_tasks("test", 50, seed=0)
    episodes = run_policy(suite, tasks, "expert", seed=0, progress=False).unique("trajectory_id")
    assert episodes["final_reward"].is_between(0.0, 1.0).all()
    assert episodes["final_reward"].mean() >= 0.5

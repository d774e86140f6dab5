"""WebShop products: the normalised table every other module reads, a generator, and a loader.

Products flow as a polars DataFrame with exactly the columns of `PRODUCT_SCHEMA`:

- `asin` (str, unique): the product id shown on result pages and clicked as `click[<asin>]`.
- `name` (str): the title (WebShop's `Title`).
- `category` (str): one of WebShop's top-level categories (beauty, food, fashion, furniture, electronics).
- `query` (str): the search query the product was collected under; the type reward compares it.
- `product_category` (str): the breadcrumb path, levels joined by ` › `.
- `pricing` (list[float]): one price, or a [low, high] range as WebShop stores it.
- `price` (float): the price the reward checks against the goal's bound (inside `pricing`).
- `price_tag` (str): the price as the pages show it (`$12.99`, `$10.0 to $20.0`).
- `bullet_points` (list[str]): the `features` sub-page (WebShop's `BulletPoints`).
- `description` (str): the `description` sub-page.
- `attributes` (list[str]): the product's attribute phrases (WebShop's `Attributes`, not shown on pages).
- `options` (list[struct{name: str, values: list[str]}]): option types (size, color, ...) in page order,
  each with its lower-cased values.
- `reviews` (list[struct{score: int, body: str}]) and `rating` (float, null when there are no reviews).
- `instruction_text` (str, null) and `instruction_attributes` (list[str]): set on goal products only;
  synthetic goals are built from them (`depo.envs.webshop.goals`).
"""
from __future__ import annotations

import json
import random
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

PRODUCT_SCHEMA: dict[str, pl.DataType] = {
    "asin": pl.String,
    "name": pl.String,
    "category": pl.String,
    "query": pl.String,
    "product_category": pl.String,
    "pricing": pl.List(pl.Float64),
    "price": pl.Float64,
    "price_tag": pl.String,
    "bullet_points": pl.List(pl.String),
    "description": pl.String,
    "attributes": pl.List(pl.String),
    "options": pl.List(pl.Struct({"name": pl.String, "values": pl.List(pl.String)})),
    "reviews": pl.List(pl.Struct({"score": pl.Int64, "body": pl.String})),
    "rating": pl.Float64,
    "instruction_text": pl.String,
    "instruction_attributes": pl.List(pl.String),
}
CATEGORY_SEP = " › "
# WebShop prices a product without pricing at $100.
DEFAULT_PRICE = 100.0


@dataclass(frozen=True)
class Product:
    """One row of the products table, as the environment and the reward read it."""

    asin: str
    name: str
    category: str
    query: str
    product_category: str
    pricing: tuple[float, ...]
    price: float
    price_tag: str
    bullet_points: tuple[str, ...]
    description: str
    attributes: tuple[str, ...]
    options: tuple[tuple[str, tuple[str, ...]], ...]
    reviews: tuple[tuple[int, str], ...]
    rating: float | None
    instruction_text: str | None
    instruction_attributes: tuple[str, ...]

    @property
    def option_dict(self) -> dict[str, tuple[str, ...]]:
        return dict(self.options)


def validate_products(frame: pl.DataFrame, name: str = "products") -> pl.DataFrame:
    """Raise naming `name` and the column when `frame` is not in `PRODUCT_SCHEMA`; asins must be unique."""
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"{name}: expected a polars DataFrame, got {type(frame).__name__}")
    for column, dtype in PRODUCT_SCHEMA.items():
        if column not in frame.columns:
            raise ValueError(f"{name}: missing column {column!r} of the WebShop product schema")
        if frame.schema[column] != dtype:
            raise ValueError(f"{name}: column {column!r} is {frame.schema[column]}, expected {dtype}")
    if frame.height == 0:
        raise ValueError(f"{name}: no products")
    duplicated = frame.filter(pl.col("asin").is_duplicated())["asin"]
    if duplicated.len():
        raise ValueError(f"{name}: asin {duplicated[0]!r} appears more than once")
    return frame


def products_from_frame(frame: pl.DataFrame) -> list[Product]:
    validate_products(frame)
    products = []
    for row in frame.select(list(PRODUCT_SCHEMA)).iter_rows(named=True):
        products.append(
            Product(
                asin=row["asin"],
                name=row["name"],
                category=row["category"],
                query=row["query"],
                product_category=row["product_category"],
                pricing=tuple(row["pricing"] or ()),
                price=row["price"],
                price_tag=row["price_tag"],
                bullet_points=tuple(row["bullet_points"] or ()),
                description=row["description"] or "",
                attributes=tuple(row["attributes"] or ()),
                options=tuple((o["name"], tuple(o["values"] or ())) for o in row["options"] or ()),
                reviews=tuple((r["score"], r["body"]) for r in row["reviews"] or ()),
                rating=row["rating"],
                instruction_text=row["instruction_text"],
                instruction_attributes=tuple(row["instruction_attributes"] or ()),
            )
        )
    return products


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=PRODUCT_SCHEMA)


def price_tag(pricing: list[float]) -> str:
    if len(pricing) == 1:
        return f"${pricing[0]}"
    return f"${pricing[0]} to ${pricing[1]}"


def price_in_range(asin: str, pricing: list[float]) -> float:
    """The price of a product; a [low, high] range gets a uniform draw seeded by the asin.

    WebShop draws from the range with the global random state at load time; seeding by asin keeps
    the draw but makes it the same on every load.
    """
    if len(pricing) == 1:
        return pricing[0]
    return round(random.Random(asin).uniform(pricing[0], pricing[1]), 2)


# ---------------------------------------------------------------------------------------------
# Generated catalog
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _ProductType:
    query: str  # lower-case search query, also the noun the title and instruction use
    path: tuple[str, ...]  # breadcrumb below the category root
    options: tuple[tuple[str, tuple[str, ...]], ...]
    price_range: tuple[float, float]
    features: tuple[str, ...]  # generic bullet points that name no attribute


_SHOE_SIZES = ("6", "7", "7.5", "8", "8.5", "9", "10", "11", "12")
_APPAREL_SIZES = ("x-small", "small", "medium", "large", "x-large", "xx-large")
_FASHION_COLORS = ("black", "white", "navy blue", "burgundy", "olive green", "khaki", "pink", "charcoal")
_FURNITURE_COLORS = ("espresso", "white", "walnut", "black", "natural", "gray", "cherry")
_TECH_COLORS = ("black", "white", "silver", "blue", "red", "rose gold")

# Per category: the breadcrumb root, the attribute pool its products draw from, and its product types.
_CATEGORIES: dict[str, tuple[str, tuple[str, ...], tuple[_ProductType, ...]]] = {
    "beauty": (
        "Beauty & Personal Care",
        ("sulfate free", "paraben free", "cruelty free", "natural ingredients", "tea tree", "argan oil",
         "dry skin", "sensitive skin", "long lasting", "travel size", "hyaluronic acid", "vitamin c",
         "fragrance free", "dermatologist tested"),
        (
            _ProductType("shampoo", ("Hair Care", "Shampoo & Conditioner", "Shampoos"),
                         (("size", ("8 fl oz (pack of 1)", "16 fl oz (pack of 1)", "8 fl oz (pack of 2)",
                                    "33.8 fl oz (pack of 1)")),
                          ("scent", ("lavender", "coconut", "unscented", "peppermint", "citrus"))),
                         (6, 38), ("Lathers richly and rinses clean", "Made in the USA")),
            _ProductType("lip balm", ("Skin Care", "Lip Care", "Balms & Moisturizers"),
                         (("flavor name", ("vanilla", "strawberry", "mint", "honey", "cherry")),
                          ("size", ("0.15 ounce (pack of 3)", "0.15 ounce (pack of 6)", "0.15 ounce (pack of 12)"))),
                         (3, 18), ("Glides on smoothly", "Fits in a pocket or purse")),
            _ProductType("face moisturizer", ("Skin Care", "Face", "Creams & Moisturizers"),
                         (("size", ("1.7 fl oz", "3.4 fl oz", "6.8 fl oz")),
                          ("style", ("day cream", "night cream", "gel cream"))),
                         (9, 65), ("Absorbs quickly without a greasy feel", "Use morning and night")),
            _ProductType("body wash", ("Personal Care", "Bath & Bathing Accessories", "Body Washes"),
                         (("scent", ("lavender", "coconut", "eucalyptus", "unscented", "citrus")),
                          ("size", ("12 fl oz (pack of 1)", "16 fl oz (pack of 2)", "32 fl oz (pack of 1)"))),
                         (5, 30), ("Rich foaming lather", "Gentle enough for daily use")),
            _ProductType("nail polish", ("Foot, Hand & Nail Care", "Nail Art & Polish", "Nail Polish"),
                         (("color", ("ruby red", "pink", "nude", "navy blue", "black", "coral")),
                          ("size", ("0.5 fl oz (pack of 1)", "0.5 fl oz (pack of 3)"))),
                         (4, 22), ("Chip resistant glossy finish", "Quick two coat coverage")),
        ),
    ),
    "food": (
        "Grocery & Gourmet Food",
        ("gluten free", "non gmo", "usda organic", "keto friendly", "low sugar", "high protein",
         "sugar free", "kosher certified", "plant based", "caffeine free", "low calorie", "dairy free",
         "fair trade", "individually wrapped"),
        (
            _ProductType("ground coffee", ("Beverages", "Coffee, Tea & Cocoa", "Coffee", "Ground Coffee"),
                         (("flavor name", ("dark roast", "medium roast", "hazelnut", "french vanilla", "mocha")),
                          ("size", ("12 ounce (pack of 1)", "12 ounce (pack of 2)", "32 ounce (pack of 1)"))),
                         (7, 35), ("Roasted in small batches", "Resealable bag keeps it fresh")),
            _ProductType("protein bars", ("Snack Foods", "Bars", "Protein Bars"),
                         (("flavor name", ("chocolate chip", "peanut butter", "cookie dough", "birthday cake",
                                           "salted caramel")),
                          ("size", ("12 count (pack of 1)", "12 count (pack of 2)", "24 count (pack of 1)"))),
                         (12, 48), ("A satisfying snack between meals", "Great for the gym bag")),
            _ProductType("herbal tea", ("Beverages", "Coffee, Tea & Cocoa", "Tea", "Herbal"),
                         (("flavor name", ("chamomile", "peppermint", "ginger", "hibiscus", "lemon balm")),
                          ("size", ("20 count (pack of 1)", "20 count (pack of 6)", "100 count (pack of 1)"))),
                         (4, 28), ("Steep for five minutes", "Enjoy hot or iced")),
            _ProductType("mixed nuts", ("Snack Foods", "Nuts & Seeds", "Mixed Nuts"),
                         (("flavor name", ("sea salt", "honey roasted", "unsalted", "smoked", "chili lime")),
                          ("size", ("1 pound (pack of 1)", "2 pound (pack of 1)", "1.5 ounce (pack of 24)"))),
                         (8, 40), ("Crunchy and satisfying", "Packed in a resealable container")),
            _ProductType("dark chocolate", ("Snacks & Sweets", "Chocolate", "Chocolate Bars"),
                         (("flavor name", ("sea salt", "almond", "orange", "mint", "raspberry")),
                          ("size", ("3.5 ounce (pack of 4)", "3.5 ounce (pack of 12)", "1 ounce (pack of 24)"))),
                         (6, 45), ("Smooth and rich taste", "Perfect for gifting")),
        ),
    ),
    "fashion": (
        "Clothing, Shoes & Jewelry",
        ("machine wash", "slim fit", "long sleeve", "short sleeve", "cotton spandex", "relaxed fit",
         "button closure", "rubber sole", "quick drying", "moisture wicking", "elastic waist",
         "polyester spandex", "hand wash", "lace closure"),
        (
            _ProductType("t-shirt", ("Men", "Clothing", "Shirts", "T-Shirts"),
                         (("color", _FASHION_COLORS), ("size", _APPAREL_SIZES)),
                         (9, 35), ("Tagless neck label", "Classic crew neck")),
            _ProductType("running shoes", ("Men", "Shoes", "Athletic", "Running"),
                         (("color", _FASHION_COLORS), ("size", _SHOE_SIZES)),
                         (30, 140), ("Cushioned insole for all day comfort", "Breathable mesh upper")),
            _ProductType("jeans", ("Women", "Clothing", "Jeans"),
                         (("color", ("light wash", "dark wash", "black", "medium wash", "white")),
                          ("size", ("24", "26", "28", "30", "32", "34"))),
                         (19, 80), ("Five pocket styling", "Stretch denim that keeps its shape")),
            _ProductType("maxi dress", ("Women", "Clothing", "Dresses", "Casual"),
                         (("color", _FASHION_COLORS), ("size", _APPAREL_SIZES)),
                         (18, 70), ("Flowy floor length skirt", "Pairs with sandals or heels")),
            _ProductType("hoodie", ("Men", "Clothing", "Fashion Hoodies & Sweatshirts"),
                         (("color", _FASHION_COLORS), ("size", _APPAREL_SIZES)),
                         (15, 60), ("Kangaroo pocket", "Lined hood with drawstring")),
        ),
    ),
    "furniture": (
        "Home & Kitchen",
        ("easy assemble", "solid wood", "storage space", "living room", "metal frame", "mid century",
         "high density", "lumbar support", "space saving", "non slip", "engineered wood", "bedroom",
         "home office", "steel frame"),
        (
            _ProductType("bookshelf", ("Furniture", "Home Office Furniture", "Bookcases"),
                         (("color", _FURNITURE_COLORS), ("size", ("3 tier", "4 tier", "5 tier"))),
                         (35, 180), ("Holds books, plants and decor", "Wall anchor included")),
            _ProductType("office chair", ("Furniture", "Home Office Furniture", "Home Office Chairs"),
                         (("color", ("black", "gray", "white", "blue", "pink")),
                          ("style", ("with armrests", "armless", "with footrest"))),
                         (60, 260), ("Adjustable seat height", "Smooth rolling casters")),
            _ProductType("coffee table", ("Furniture", "Living Room Furniture", "Tables", "Coffee Tables"),
                         (("color", _FURNITURE_COLORS), ("size", ("round", "rectangle", "square"))),
                         (45, 220), ("Lower shelf for magazines", "Wipes clean easily")),
            _ProductType("bed frame", ("Furniture", "Bedroom Furniture", "Beds, Frames & Bases", "Beds"),
                         (("color", _FURNITURE_COLORS), ("size", ("twin", "full", "queen", "king"))),
                         (90, 400), ("No box spring needed", "Quiet, squeak free design")),
            _ProductType("nightstand", ("Furniture", "Bedroom Furniture", "Nightstands"),
                         (("color", _FURNITURE_COLORS), ("size", ("1 drawer", "2 drawers", "3 drawers"))),
                         (30, 150), ("Smooth gliding drawers", "Fits beside any bed")),
        ),
    ),
    "electronics": (
        "Electronics",
        ("fast charging", "noise cancelling", "high definition", "easy install", "water resistant",
         "long battery life", "usb c", "hands free", "plug play", "heavy duty", "wireless bluetooth",
         "high speed", "aluminum alloy", "stereo sound"),
        (
            _ProductType("wireless earbuds", ("Headphones, Earbuds & Accessories", "Headphones & Earbuds",
                                              "Earbud Headphones"),
                         (("color", _TECH_COLORS), ("style", ("standard", "with charging case", "sport"))),
                         (18, 150), ("Comfortable secure fit", "Touch controls on each bud")),
            _ProductType("phone charger", ("Computers & Accessories", "Cell Phone Accessories", "Chargers"),
                         (("color", _TECH_COLORS), ("size", ("1 pack", "2 pack", "3 pack"))),
                         (8, 45), ("Compact travel design", "Protects against overheating")),
            _ProductType("bluetooth speaker", ("Portable Audio & Video", "Portable Speakers & Docks",
                                               "Portable Bluetooth Speakers"),
                         (("color", _TECH_COLORS), ("style", ("mini", "standard", "party"))),
                         (20, 160), ("Pairs in seconds", "Built in microphone")),
            _ProductType("hdmi cable", ("Accessories & Supplies", "Audio & Video Accessories", "Cables",
                                        "HDMI Cables"),
                         (("size", ("3 ft", "6 ft", "10 ft", "15 ft")), ("style", ("1 pack", "2 pack", "5 pack"))),
                         (5, 30), ("Gold plated connectors", "Braided jacket resists tangles")),
            _ProductType("smart watch band", ("Wearable Technology", "Accessories", "Bands"),
                         (("color", _TECH_COLORS), ("size", ("38mm", "40mm", "42mm", "44mm"))),
                         (6, 35), ("Swaps on in seconds", "Adjustable clasp")),
        ),
    ),
}
CATEGORIES = tuple(_CATEGORIES)

_BRAND_PARTS = ("lu", "mo", "ra", "ve", "lix", "no", "va", "ka", "ri", "zen", "to", "bri", "sa", "dor",
                "fel", "qui", "ta", "pex", "mar", "ion", "el", "cor", "nu", "vo")
_INSTRUCTION_TEMPLATES = (
    "i need {attrs} {noun}",
    "i am looking for {attrs} {noun}",
    "find me {noun} with {attrs_comma}",
    "i want to buy {noun} that is {attrs}",
)
_FEATURE_TEMPLATES = ("{Attr} for everyday peace of mind", "Designed to be {attr}", "{Attr}: what you asked for",
                      "Proudly {attr}")
_REVIEW_TEMPLATES = ("Exactly as described, would buy this {noun} again.", "Good value for the price.",
                     "Arrived quickly and works well.", "Not bad, but the packaging was damaged.",
                     "My second {noun} from this brand.")
# A family is a goal product plus near misses of these kinds (see `generate_catalog`).
_NEAR_MISSES = ("attribute_swap", "over_price", "other_type", "missing_option")


def _brand(rng: random.Random) -> str:
    return (rng.choice(_BRAND_PARTS) + rng.choice(_BRAND_PARTS) + rng.choice(_BRAND_PARTS)).capitalize()


def _asin(rng: random.Random, taken: set[str]) -> str:
    while True:
        asin = "B0" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=8))
        if asin not in taken:
            taken.add(asin)
            return asin


def _title_case(phrase: str) -> str:
    return " ".join(word[:1].upper() + word[1:] for word in phrase.split())


def _sample_options(rng: random.Random, kind: _ProductType, avoid: dict[str, tuple[str, ...]] | None = None):
    """2-4 values per option type, in pool order; with `avoid`, the first type excludes those values."""
    options = []
    for index, (name, pool) in enumerate(kind.options):
        candidates = list(pool)
        if avoid is not None and index == 0:
            candidates = [v for v in pool if v not in avoid[name]] or candidates
        k = min(len(candidates), rng.randint(2, 4))
        chosen = set(rng.sample(candidates, k))
        options.append({"name": name, "values": [v for v in candidates if v in chosen]})
    return options


def _make_product(
    rng: random.Random,
    taken: set[str],
    category: str,
    kind: _ProductType,
    attributes: list[str],
    price: float,
    options: list[dict[str, Any]],
) -> dict[str, Any]:
    root = _CATEGORIES[category][0]
    brand = _brand(rng)
    # The title names up to three attributes; any further attribute is only in the bullet points.
    title_attrs = attributes[:3]
    title = f"{brand} {' '.join(_title_case(a) for a in title_attrs)} {_title_case(kind.query)}"
    bullets = [rng.choice(_FEATURE_TEMPLATES).format(attr=a, Attr=a.capitalize()) for a in attributes]
    bullets += list(kind.features)
    description = (f"The {brand} {kind.query} is part of our {root.lower()} range. "
                   f"{kind.features[0]}. Satisfaction guaranteed or your money back.")
    reviews = [{"score": rng.randint(2, 5), "body": rng.choice(_REVIEW_TEMPLATES).format(noun=kind.query)}
               for _ in range(rng.randint(0, 3))]
    price = round(price, 2)
    asin = _asin(rng, taken)
    return {
        "asin": asin,
        "name": title,
        "category": category,
        "query": kind.query,
        "product_category": CATEGORY_SEP.join((root, *kind.path)),
        "pricing": [price],
        "price": price,
        "price_tag": price_tag([price]),
        "bullet_points": bullets,
        "description": description,
        "attributes": list(attributes),
        "options": options,
        "reviews": reviews,
        "rating": round(sum(r["score"] for r in reviews) / len(reviews), 1) if reviews else None,
        "instruction_text": None,
        "instruction_attributes": [],
    }


def _instruction(rng: random.Random, noun: str, attributes: list[str]) -> str:
    template = rng.choice(_INSTRUCTION_TEMPLATES)
    return template.format(noun=noun, attrs=" and ".join(attributes), attrs_comma=", ".join(attributes))


def _price(rng: random.Random, kind: _ProductType) -> float:
    low, high = kind.price_range
    return float(int(rng.uniform(low, high))) + 0.99


def generate_catalog(n_products: int, seed: int) -> pl.DataFrame:
    """A deterministic catalog of `n_products` over WebShop's five categories, in `PRODUCT_SCHEMA`.

    Products come in families: a goal product (with an instruction naming 2-3 of its attributes)
    and 1-3 near misses a careless shopper would buy instead: the same type with one requested
    attribute swapped (`attribute_swap`), the same product well over any price bound the goal can
    get (`over_price`), another type of the same category with the same attributes (`other_type`),
    or the same type without the goal's values for its first option type (`missing_option`, when
    that option's pool has values the goal product lacks).
    """
    if not isinstance(n_products, int) or n_products < 2:
        raise ValueError(f"n_products must be an integer >= 2, got {n_products!r}")
    rng = random.Random(seed)
    taken: set[str] = set()
    rows: list[dict[str, Any]] = []
    while len(rows) < n_products:
        category = rng.choice(CATEGORIES)
        _, pool, kinds = _CATEGORIES[category]
        kind = rng.choice(kinds)
        attributes = rng.sample(pool, rng.randint(3, 4))
        goal = _make_product(rng, taken, category, kind, attributes, _price(rng, kind), _sample_options(rng, kind))
        goal_attributes = rng.sample(attributes, rng.randint(2, 3))
        goal["instruction_text"] = _instruction(rng, kind.query, goal_attributes)
        goal["instruction_attributes"] = goal_attributes
        family = [goal]
        for miss in rng.sample(_NEAR_MISSES, rng.randint(1, 3)):
            family.append(_near_miss(rng, taken, miss, category, kind, goal, goal_attributes))
        rows.extend(family)
    return _frame(rows[:n_products])


def _near_miss(rng, taken, miss, category, kind, goal, goal_attributes) -> dict[str, Any]:
    pool, kinds = _CATEGORIES[category][1], _CATEGORIES[category][2]
    attributes = list(goal["attributes"])
    price = goal["price"] * rng.uniform(0.8, 1.15)
    options = _sample_options(rng, kind)
    if miss == "attribute_swap":
        replaced = rng.choice(goal_attributes)
        unused = [a for a in pool if a not in attributes]
        attributes[attributes.index(replaced)] = rng.choice(unused)
    elif miss == "over_price":
        # A goal's bound is at most 40 dollars above its price (see `goals.price_upper_bound`).
        price = goal["price"] + rng.uniform(45, 120)
    elif miss == "other_type":
        kind = rng.choice([k for k in kinds if k is not kind])
        price = _price(rng, kind)
        options = _sample_options(rng, kind)
    else:
        options = _sample_options(rng, kind, avoid={o["name"]: tuple(o["values"]) for o in goal["options"]})
    return _make_product(rng, taken, category, kind, attributes, price, options)


# ---------------------------------------------------------------------------------------------
# WebShop's own files
# ---------------------------------------------------------------------------------------------

def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"WebShop file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def load_webshop_attributes(path: str | Path) -> dict[str, dict[str, Any]]:
    """WebShop's `items_ins_v2_1000.json`: asin -> {attributes, and optionally instruction,
    instruction_attributes}; the first malformed record raises an error naming the file and asin."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object mapping asin -> record, got {type(data).__name__}")
    for asin, record in data.items():
        where = f"{path}: record {asin!r}"
        if not isinstance(record, dict):
            raise ValueError(f"{where} is {type(record).__name__}, expected an object")
        if not _string_list(record.get("attributes")):
            raise ValueError(f"{where}: 'attributes' must be a list of strings")
        if "instruction" in record or "instruction_attributes" in record:
            if not isinstance(record.get("instruction"), str) or not record["instruction"].strip():
                raise ValueError(f"{where}: 'instruction' must be a non-empty string")
            if not _string_list(record.get("instruction_attributes")) or not record["instruction_attributes"]:
                raise ValueError(f"{where}: 'instruction_attributes' must be a non-empty list of strings")
    return data


_PRICE_NUMBER = re.compile(r"[^\d.]")


def _parse_pricing(value: Any, where: str) -> list[float]:
    """WebShop's pricing: a string of `$`-prefixed numbers (first two kept), or a list of numbers."""
    if value is None or value == "" or value == []:
        return [DEFAULT_PRICE]
    if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
        return [float(v) for v in value[:2]]
    if not isinstance(value, str):
        raise ValueError(f"{where}: 'pricing' must be a string like '$12.99' or a list of numbers")
    try:
        prices = [float(_PRICE_NUMBER.sub("", part)) for part in value.split("$")[1:]]
    except ValueError as error:
        raise ValueError(f"{where}: cannot read a price from pricing {value!r}") from error
    return prices[:2] or [DEFAULT_PRICE]


def _first_key(record: dict[str, Any], keys: tuple[str, ...], where: str) -> Any:
    for key in keys:
        if key in record:
            return record[key]
    raise ValueError(f"{where}: missing {' / '.join(repr(k) for k in keys)}")


def _parse_options(value: Any, where: str) -> list[dict[str, Any]]:
    """`customization_options` (name -> [{value, image}]) as WebShop normalises it: lower-case
    names and values, `/` shown as ` | `, empty types dropped."""
    if value is None or value == {}:
        return []
    if not isinstance(value, dict):
        raise ValueError(f"{where}: 'customization_options' must be an object")
    options = []
    for name, contents in value.items():
        if contents is None:
            continue
        if not isinstance(contents, list) or not all(isinstance(c, dict) and isinstance(c.get("value"), str)
                                                      for c in contents):
            raise ValueError(f"{where}: option {name!r} must be a list of objects with a string 'value'")
        values = []
        for content in contents:
            text = content["value"].strip().replace("/", " | ").lower()
            if text not in values:
                values.append(text)
        options.append({"name": name.lower(), "values": values})
    return options


def load_webshop_products(items_path: str | Path, attributes_path: str | Path | None = None) -> pl.DataFrame:
    """WebShop's products (`items_shuffle_1000.json`) joined with their attributes and synthetic
    instructions (`items_ins_v2_1000.json`, by default the file beside `items_path`).

    Like WebShop, records whose asin is 'nan' or longer than 10 characters and repeated asins are
    skipped, and a product without attributes gets none (WebShop puts a dummy attribute). Reviews
    are not in these files, so `reviews` is empty and `rating` null.
    """
    items_path = Path(items_path)
    attributes_path = Path(attributes_path) if attributes_path else items_path.parent / "items_ins_v2_1000.json"
    attributes = load_webshop_attributes(attributes_path)
    items = _read_json(items_path)
    if not isinstance(items, list):
        raise ValueError(f"{items_path}: expected a JSON list of products, got {type(items).__name__}")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"{items_path}: record {index}"
        if not isinstance(item, dict) or not isinstance(item.get("asin"), str):
            raise ValueError(f"{where}: expected an object with a string 'asin'")
        asin = item["asin"]
        where = f"{items_path}: record {index} (asin {asin!r})"
        if asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        texts = {}
        for field, keys in (("name", ("name", "Title")), ("category", ("category",)), ("query", ("query",)),
                            ("product_category", ("product_category",)),
                            ("description", ("full_description", "Description"))):
            value = _first_key(item, keys, where)
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise ValueError(f"{where}: {keys[0]!r} must be a string")
            texts[field] = value
        bullets = _first_key(item, ("small_description", "BulletPoints"), where)
        bullets = [bullets] if isinstance(bullets, str) else (bullets or [])
        if not _string_list(bullets):
            raise ValueError(f"{where}: 'small_description' must be a string or a list of strings")
        pricing = _parse_pricing(item.get("pricing", item.get("Price")), where)
        record = attributes.get(asin, {})
        instruction = record.get("instruction")
        rows.append({
            **texts,
            "asin": asin,
            "query": texts["query"].lower().strip(),
            "pricing": pricing,
            "price": price_in_range(asin, pricing),
            "price_tag": price_tag(pricing),
            "bullet_points": bullets,
            "attributes": record.get("attributes", []),
            "options": _parse_options(item.get("customization_options"), where),
            "reviews": [],
            "rating": None,
            "instruction_text": instruction,
            "instruction_attributes": record.get("instruction_attributes", []) if instruction else [],
        })
    if not rows:
        raise ValueError(f"{items_path}: no usable products")
    return _frame(rows)

"""WebShop (Yao et al., 2022) as a pure-Python text environment: products, BM25 search, pages, the
purchase reward, synthetic goals and a scripted expert."""
from depo.envs.webshop.catalog import (
    PRODUCT_SCHEMA,
    Product,
    generate_catalog,
    load_webshop_attributes,
    load_webshop_products,
    validate_products,
)
from depo.envs.webshop.env import SYSTEM_PROMPT, WebShopEnv, WebShopSuite
from depo.envs.webshop.goals import Goal
from depo.envs.webshop.reward import webshop_reward
from depo.envs.webshop.search import SearchIndex

__all__ = [
    "PRODUCT_SCHEMA",
    "SYSTEM_PROMPT",
    "Goal",
    "Product",
    "SearchIndex",
    "WebShopEnv",
    "WebShopSuite",
    "generate_catalog",
    "load_webshop_attributes",
    "load_webshop_products",
    "validate_products",
    "webshop_reward",
]

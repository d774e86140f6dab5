"""The search engine behind `search[...]`: BM25 (bm25s, numpy backend) over each product's text.

WebShop searches a Lucene index of title, description, first bullet point and options; here a
product's document is its title, bullet points, description, attributes and option values, and
words are lower-cased, stop words dropped and plurals folded (`shirts` finds `shirt`), since no
stemmer is installed. A search returns at most `SEARCH_RETURN_N` products, best first, and only
products sharing at least one word with the query.
"""
from __future__ import annotations

import re
from functools import lru_cache

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from depo.envs.webshop.catalog import Product

SEARCH_RETURN_N = 50
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(STOPWORDS_EN)


def fold_plural(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    return [fold_plural(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def product_document(product: Product) -> str:
    option_values = " ".join(v for _, values in product.options for v in values)
    return " ".join([product.name, *product.bullet_points, product.description, *product.attributes, option_values])


class SearchIndex:
    """A BM25 index over a product list; `search` returns product positions in that list."""

    def __init__(self, products: list[Product], cache_size: int = 4096):
        if not products:
            raise ValueError("SearchIndex needs at least one product")
        self.n_products = len(products)
        self._retriever = bm25s.BM25(backend="numpy")
        self._retriever.index([tokenize(product_document(p)) or [""] for p in products], show_progress=False)
        self._vocabulary = set(self._retriever.vocab_dict)
        # Episodes repeat queries (the expert per goal, tree search per node); results are immutable.
        self.search = lru_cache(maxsize=cache_size)(self._search)

    def _search(self, query: str) -> tuple[int, ...]:
        tokens = [t for t in tokenize(query) if t in self._vocabulary]
        if not tokens:
            return ()
        k = min(SEARCH_RETURN_N, self.n_products)
        documents, scores = self._retriever.retrieve([tokens], k=k, show_progress=False)
        positive = scores[0] > 0
        return tuple(int(i) for i in np.asarray(documents[0])[positive])

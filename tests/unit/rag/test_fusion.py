"""Reciprocal-rank fusion of the vector and keyword rankings."""

from __future__ import annotations

import pytest

from backend.tools.rag import RRF_K, rrf_fuse


def test_score_is_the_sum_of_reciprocal_ranks() -> None:
    fused = dict(rrf_fuse([["a", "b"], ["b", "c"]]))
    assert fused["a"] == pytest.approx(1 / (RRF_K + 1))
    assert fused["b"] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert fused["c"] == pytest.approx(1 / (RRF_K + 2))


def test_an_item_found_by_both_rankers_beats_one_found_by_a_single_ranker() -> None:
    order = [item for item, _ in rrf_fuse([["solo", "both"], ["both", "other"]])]
    assert order[0] == "both"


def test_ties_keep_first_seen_order() -> None:
    order = [item for item, _ in rrf_fuse([["x", "y"], ["y2", "x2"]])]
    assert order == ["x", "y2", "y", "x2"]


def test_one_empty_ranking_leaves_the_other_order_unchanged() -> None:
    assert [item for item, _ in rrf_fuse([[], ["p", "q", "r"]])] == ["p", "q", "r"]


def test_smaller_constant_weights_top_ranks_more() -> None:
    sharp = dict(rrf_fuse([["a", "b"]], k=1))
    flat = dict(rrf_fuse([["a", "b"]], k=1000))
    assert sharp["a"] / sharp["b"] > flat["a"] / flat["b"]

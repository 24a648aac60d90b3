import numpy as np
import pytest

from datagen.dedupe.exact_dedup import exact_dedupe
from datagen.dedupe.minhash_dedup import (
    MinhashDedupConfig,
    NearDuplicateIndex,
    cluster_near_duplicates,
    minhash_dedupe,
    shingles,
)
from datagen.dedupe.minhash_signatures import (
    candidate_pairs,
    connected_components,
    estimated_jaccard,
    normalized_words,
    shingle_keys,
    signatures,
)
from datagen.foundation.hashing import normalize_text

BASE = ("my order A-123456 with the espresso machine has not arrived after two weeks and nobody "
        "answers the phone when I call the shop, where is it please")
LONGER = BASE + " today"  # word 3-gram Jaccard with BASE 25/26 = 0.96
CHANGED = BASE.replace("please", "pls")  # 24/26 = 0.92 with BASE, 24/27 = 0.89 with LONGER
OTHER = "I was charged twice for my subscription this month and want the extra charge refunded"
ROWS = [("a", BASE), ("b", OTHER), ("c", LONGER), ("d", CHANGED)]
SCORES = {"a": 0.5, "b": 0.1, "c": 0.2, "d": 0.9}


def test_normalization_folds_case_width_and_whitespace():
    assert normalize_text("  Ｗhere IS\tmy\n\norder?  ") == "where is my order?"


def test_exact_dedupe_keeps_first_and_names_it():
    rows = [("a", "Where is my order?"), ("b", "where is  my ORDER?"), ("c", "Where is my order!")]
    kept, removed = exact_dedupe(rows, lambda r: r[1], lambda r: r[0])
    assert [r[0] for r in kept] == ["a", "c"]
    assert removed == [(("b", "where is  my ORDER?"), "a")]


def test_word_shingles():
    assert shingles("The cat sat on it", "word", 3) == {"the cat sat", "cat sat on", "sat on it"}
    assert shingles("Hi", "word", 3) == {"hi"}
    assert shingles("abcd", "char", 3) == {"abc", "bcd"}


def test_normalized_words_are_the_words_of_normalize_text():
    text = "  Ｗhere\u00a0IS\u3000my\x85order\u2028\u200b?\t\x1c end "
    assert normalize_text(text) == "where is my order \u200b? end"
    assert normalized_words(text) == ["where", "is", "my", "order", "\u200b?", "end"]
    assert normalized_words(" \t ") == [""] and normalize_text(" \t ") == ""


@pytest.mark.parametrize("shingle", ["word", "char"])
def test_vectorized_shingle_keys_hash_exactly_the_shingle_sets(shingle):
    texts = ["The cat sat on the cat sat", "Hi", "", "a  B", "Ｗhere is my order?"]
    keys, starts = shingle_keys(texts, shingle, 3)
    runs = np.split(keys, starts[1:])
    assert [len(set(run.tolist())) for run in runs] == [len(shingles(t, shingle, 3)) for t in texts]
    assert [len(run) for run in runs] == ([5, 1, 1, 1, 2] if shingle == "word" else [24, 1, 1, 1, 16])


def test_signatures_are_deterministic_and_estimate_jaccard():
    a = "one two three four five six seven eight nine ten"
    b = "one two three four five six seven eight nine eleven"  # word 3-gram Jaccard 7/9 = 0.78
    config = MinhashDedupConfig()
    sigs = signatures([a, b, a], config)
    assert sigs.shape == (3, 128) and sigs.dtype == np.uint64
    assert np.array_equal(sigs[0], sigs[2])
    assert np.array_equal(signatures([b], config)[0], sigs[1])  # same text, other batch
    assert estimated_jaccard(sigs[0], sigs[1]) == 0.78125
    assert not np.array_equal(signatures([a], MinhashDedupConfig(seed=2))[0], sigs[0])


def test_signatures_in_worker_processes_equal_in_process():
    texts = [BASE, OTHER, LONGER, CHANGED, "", "Hi"]
    config = MinhashDedupConfig()
    assert np.array_equal(
        signatures(texts, config, processes=2, batch_size=2), signatures(texts, config, processes=1)
    )


def test_lsh_bands_are_datasketchs_choice_for_the_weights():
    assert MinhashDedupConfig(threshold=0.8).bands() == (14, 9)
    assert MinhashDedupConfig(threshold=0.7).bands() == (20, 6)


def test_bucket_members_pair_with_its_first_and_union_find_joins_chains():
    keys = np.array([[5, 1], [7, 2], [5, 3], [5, 2], [9, 9]], np.uint64)
    assert candidate_pairs(keys).tolist() == [[0, 2], [0, 3], [1, 3]]
    assert connected_components(6, np.array([[3, 4], [1, 3], [4, 5]])).tolist() == [0, 1, 2, 1, 1, 1]


def test_minhash_removes_near_duplicates_and_keeps_distinct_texts():
    near = BASE.replace("please", "pls")
    rows = [("a", BASE), ("b", OTHER), ("c", near)]
    kept, removed = minhash_dedupe(rows, lambda r: r[1], lambda r: r[0], MinhashDedupConfig())
    assert [r[0] for r in kept] == ["a", "b"]
    assert [(r[0][0], of, similarity) for r, of, similarity in removed] == [("c", "a", 0.9375)]


@pytest.mark.parametrize(
    ("keep", "kept", "removed"),
    [
        ("first", ["a", "b"], [("c", "a", 0.96875), ("d", "a", 0.9375)]),
        ("longest", ["b", "c"], [("a", "c", 0.96875), ("d", "c", 0.9140625)]),
        ("quality", ["b", "d"], [("a", "d", 0.9375), ("c", "d", 0.9140625)]),
    ],
)
def test_keep_policy_picks_the_cluster_representative(keep, kept, removed):
    got_kept, got_removed = minhash_dedupe(
        ROWS, lambda r: r[1], lambda r: r[0], MinhashDedupConfig(keep=keep), score_of=lambda r: SCORES[r[0]]
    )
    assert [r[0] for r in got_kept] == kept
    assert [(r[0][0], of, similarity) for r, of, similarity in got_removed] == removed


def test_quality_without_a_score_is_an_error():
    with pytest.raises(ValueError, match="score_of"):
        minhash_dedupe(ROWS, lambda r: r[1], lambda r: r[0], MinhashDedupConfig(keep="quality"))


def test_clusters_report_representative_similarity_and_size():
    config = MinhashDedupConfig()
    found = cluster_near_duplicates(signatures([r[1] for r in ROWS], config), config)
    assert found.representative.tolist() == [0, 1, 0, 0]
    assert found.similarity.tolist() == [1.0, 1.0, 0.96875, 0.9375]
    assert found.cluster_size.tolist() == [3, 1, 3, 3]
    assert found.removed.tolist() == [2, 3]


def test_minhash_threshold_decides():
    a = "one two three four five six seven eight nine ten"
    b = "one two three four five six seven eight nine eleven"  # word 3-gram Jaccard 7/9 = 0.78
    rows = [("a", a), ("b", b)]
    strict, _ = minhash_dedupe(rows, lambda r: r[1], lambda r: r[0], MinhashDedupConfig(threshold=0.9))
    loose, _ = minhash_dedupe(rows, lambda r: r[1], lambda r: r[0], MinhashDedupConfig(threshold=0.5))
    assert len(strict) == 2 and len(loose) == 1


def test_index_answers_the_closest_kept_text_above_the_threshold():
    index = NearDuplicateIndex(MinhashDedupConfig(threshold=0.7))
    index.add("a", BASE)
    index.add("b", OTHER)
    assert index.closest(CHANGED) == ("a", 0.9375)
    assert index.closest("something else entirely, about a refund for shoes") is None

from datagen.exact_dedup import exact_dedupe, normalize_text
from datagen.minhash_dedup import MinhashDedupConfig, minhash_dedupe, shingles


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


def test_minhash_removes_near_duplicates_and_keeps_distinct_texts():
    base = "my order A-123456 with the espresso machine has not arrived after two weeks, where is it please"
    near = base.replace("please", "pls")  # one word changed at the end
    other = "I was charged twice for my subscription this month and want the extra charge refunded"
    rows = [("a", base), ("b", other), ("c", near)]
    kept, removed = minhash_dedupe(rows, lambda r: r[1], lambda r: r[0], MinhashDedupConfig())
    assert [r[0] for r in kept] == ["a", "b"]
    assert len(removed) == 1
    duplicate, of, similarity = removed[0]
    assert duplicate[0] == "c" and of == "a"
    assert 0.8 <= similarity < 1.0


def test_minhash_threshold_decides():
    a = "one two three four five six seven eight nine ten"
    b = "one two three four five six seven eight nine eleven"  # word 3-gram Jaccard 7/9 = 0.78
    rows = [("a", a), ("b", b)]
    strict, _ = minhash_dedupe(rows, lambda r: r[1], lambda r: r[0], MinhashDedupConfig(threshold=0.9))
    loose, _ = minhash_dedupe(rows, lambda r: r[1], lambda r: r[0], MinhashDedupConfig(threshold=0.5))
    assert len(strict) == 2 and len(loose) == 1

from functools import partial

import pytest
from pydantic import ValidationError

from datagen.filters.text_filters import (
    LanguageConfig,
    RefusalConfig,
    RepetitionConfig,
    TokenBoundsConfig,
    apply_filters,
    in_expected_language,
    no_refusal_phrase,
    not_empty,
    not_repetitive,
    within_token_bounds,
)
from datagen.foundation.records import Example

# Every measure but the ones a test is about switched off, so it sees only its own.
LINES_ONLY = RepetitionConfig(
    min_words=0,
    max_dup_paragraph_fraction=1,
    max_dup_line_char_fraction=1,
    max_dup_paragraph_char_fraction=1,
    max_top_ngram_char_fraction={},
    max_dup_ngram_char_fraction={},
)
NO_LINE_LIMITS = RepetitionConfig(min_words=0, max_dup_line_fraction=1, max_dup_line_char_fraction=1)
NO_TOP_NGRAM_LIMITS = RepetitionConfig(min_words=0, max_top_ngram_char_fraction={})
FRENCH = (
    "Le client a été facturé deux fois pour la facture de mars et souhaite être remboursé."
)
ENGLISH = "The customer was charged twice for the March invoice and wants a refund."


def test_empty_and_whitespace_only_are_rejected():
    assert not_empty("") == (False, "empty: no characters")
    assert not_empty(" \n\t\u00a0") == (False, "empty: whitespace only")
    assert not_empty(" a ") == (True, "")


def test_token_bounds_count_with_the_given_tokenizer():
    # str.split stands in for a tokenizer's encode: any text -> list callable will do.
    config = TokenBoundsConfig(min_tokens=2, max_tokens=4)
    check = partial(within_token_bounds, config=config, tokenize=str.split)
    assert check("one") == (False, "too_few_tokens: 1 < 2")
    assert check("one two") == (True, "")
    assert check("a b c d") == (True, "")
    assert check("a b c d e") == (False, "too_many_tokens: 5 > 4")


def test_token_bounds_defaults_and_validation():
    assert TokenBoundsConfig() == TokenBoundsConfig(min_tokens=1, max_tokens=1024)
    assert within_token_bounds("", TokenBoundsConfig(), str.split) == (
        False,
        "too_few_tokens: 0 < 1",
    )
    with pytest.raises(ValidationError, match="min_tokens 5 > max_tokens 4"):
        TokenBoundsConfig(min_tokens=5, max_tokens=4)
    with pytest.raises(ValidationError, match="extra"):
        TokenBoundsConfig(max_chars=10)


def test_gopher_defaults_are_table_a1():
    config = RepetitionConfig(min_words=0)
    assert (config.max_dup_line_fraction, config.max_dup_paragraph_fraction) == (0.30, 0.30)
    assert config.max_dup_line_char_fraction == 0.20
    assert config.max_dup_paragraph_char_fraction == 0.20
    assert config.max_top_ngram_char_fraction == {2: 0.20, 3: 0.18, 4: 0.16}
    assert config.max_dup_ngram_char_fraction == {
        5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10
    }


def test_ordinary_answers_are_not_repetitive():
    answer = "The invoice for March was charged twice.\nPlease refund the duplicate payment."
    assert not_repetitive(answer, RepetitionConfig(min_words=0)) == (True, "")
    # No n-gram occurs twice, so the top 2-gram is no repetition, though it is all the text.
    assert not_repetitive("Hello world", RepetitionConfig(min_words=0)) == (True, "")


def test_duplicate_line_fraction():
    # 2 of 4 lines repeat an earlier line; blank lines are not lines.
    assert not_repetitive("yes\nno\n\nyes\nyes", RepetitionConfig(min_words=0)) == (
        False,
        "dup_line_fraction: 0.500 > 0.300",
    )


def test_duplicate_line_fraction_at_the_limit_is_kept():
    three_of_ten = "\n".join(["l1", "l2", "l3", "l4", "l5", "l6", "l7", "l1", "l1", "l1"])
    four_of_eleven = three_of_ten + "\nl1"
    assert not_repetitive(three_of_ten, LINES_ONLY) == (True, "")
    assert not_repetitive(four_of_eleven, LINES_ONLY) == (False, "dup_line_fraction: 0.364 > 0.300")


def test_duplicate_paragraph_fraction():
    text = "Hello there.\n\nGeneral Kenobi.\n  \nHello there."
    assert not_repetitive(text, NO_LINE_LIMITS) == (False, "dup_paragraph_fraction: 0.333 > 0.300")


def test_duplicate_line_character_fraction():
    # 1 of 4 lines is a duplicate (0.25, under 0.30) but holds 4 of 12 characters.
    assert not_repetitive("aaaa\nbb\ncc\naaaa", RepetitionConfig(min_words=0)) == (
        False,
        "dup_line_char_fraction: 0.333 > 0.200",
    )


def test_duplicate_paragraph_character_fraction():
    assert not_repetitive("aaaa\n\nbb\n\ncc\n\naaaa", NO_LINE_LIMITS) == (
        False,
        "dup_paragraph_char_fraction: 0.333 > 0.200",
    )


def test_top_2gram_character_fraction():
    # "the cat" (first of the two most frequent 2-grams) covers 4 words: 12 of 22 characters.
    assert not_repetitive("the cat and the cat and a dog", RepetitionConfig(min_words=0)) == (
        False,
        "top_2gram_char_fraction: 0.545 > 0.200",
    )


def test_top_2gram_character_fraction_at_the_limit_is_kept():
    # "a b" twice: 4 of 20 word characters, exactly 0.20; one character fewer elsewhere tips it.
    assert not_repetitive("a b xxxxxxxx a b yyyyyyyy", RepetitionConfig(min_words=0)) == (True, "")
    assert not_repetitive("a b xxxxxxx a b yyyyyyyy", RepetitionConfig(min_words=0)) == (
        False,
        "top_2gram_char_fraction: 0.211 > 0.200",
    )


def test_duplicate_5gram_character_fraction():
    # The second "one two three four five" holds 19 of 46 word characters; punctuation is no word.
    text = "one two three four five six, one two three four five seven."
    assert not_repetitive(text, NO_TOP_NGRAM_LIMITS) == (
        False,
        "dup_5gram_char_fraction: 0.413 > 0.150",
    )


def test_overlapping_duplicate_ngrams_count_each_word_once():
    # Repeated 5-grams start at words 1 and 2 and cover words 1-6: 6 of 7 characters.
    assert not_repetitive("x x x x x x x", NO_TOP_NGRAM_LIMITS) == (
        False,
        "dup_5gram_char_fraction: 0.857 > 0.150",
    )


def test_repetition_config_rejects_bad_limits():
    with pytest.raises(ValidationError, match="0: 0.2: n must be >= 1"):
        RepetitionConfig(max_top_ngram_char_fraction={0: 0.2})
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        RepetitionConfig(max_dup_line_fraction=1.5)


def test_refusal_phrases_match_case_insensitively_with_curly_apostrophes():
    config = RefusalConfig()
    assert no_refusal_phrase("I’m sorry, but I can’t share that.", config) == (
        False,
        "refusal_phrase: I'm sorry, but",
    )
    assert no_refusal_phrase("AS AN AI LANGUAGE MODEL, I have no opinion.", config) == (
        False,
        "refusal_phrase: As an AI",
    )
    assert no_refusal_phrase("Well, it depends on your plan.", config) == (
        False,
        "refusal_phrase: it depends",
    )


def test_refusal_phrases_match_whole_words_only():
    config = RefusalConfig()
    assert no_refusal_phrase("The company has an AI team.", config) == (True, "")
    assert no_refusal_phrase("The refund depends on your plan.", config) == (True, "")


def test_refusal_phrase_list_is_the_config():
    config = RefusalConfig(phrases=["no comment"])
    assert no_refusal_phrase("No comment.", config) == (False, "refusal_phrase: no comment")
    assert no_refusal_phrase("I cannot say.", config) == (True, "")
    with pytest.raises(ValidationError, match="at least 1 item"):
        RefusalConfig(phrases=[])


def test_wrong_language_is_rejected_with_language_and_confidence():
    config = LanguageConfig()
    assert in_expected_language(ENGLISH, config) == (True, "")
    assert in_expected_language(FRENCH, config) == (False, "wrong_language: fr (1.000) not in en")
    assert in_expected_language(FRENCH, LanguageConfig(expected=["en", "fr"])) == (True, "")


def test_texts_shorter_than_min_chars_are_not_checked():
    forty_four = "Merci beaucoup pour votre aide, à bientôt !!"
    assert len(forty_four) == 44
    assert in_expected_language(forty_four, LanguageConfig(min_chars=44)) == (
        False,
        "wrong_language: fr (0.998) not in en",
    )
    assert in_expected_language(forty_four, LanguageConfig(min_chars=45)) == (True, "")
    assert in_expected_language("Merci beaucoup", LanguageConfig()) == (True, "")


def test_an_unconfident_guess_is_no_evidence():
    # py3langid guesses Latin for these names, at 0.12.
    names = "Anna, Boris, Chen, Dmitri, Eva, Farid, Giulia, Hiro, Ines, Jonas"
    assert in_expected_language(names, LanguageConfig()) == (True, "")
    assert in_expected_language(names, LanguageConfig(min_confidence=0.1)) == (
        False,
        "wrong_language: la (0.120) not in en",
    )


def test_unknown_language_code_fails_loudly():
    with pytest.raises(ValueError, match=r"does not know the language code\(s\) \['english'\]"):
        in_expected_language(ENGLISH, LanguageConfig(expected=["english"]))


FILTERS = [
    not_empty,
    partial(within_token_bounds, config=TokenBoundsConfig(max_tokens=20), tokenize=str.split),
    partial(not_repetitive, config=RepetitionConfig(min_words=0)),
    partial(no_refusal_phrase, config=RefusalConfig()),
    partial(in_expected_language, config=LanguageConfig()),
]


def test_apply_filters_keeps_order_and_first_failure_wins():
    texts = ["  ", ENGLISH, "I'm sorry, but " + "no " * 20, "I cannot help. I cannot help.", FRENCH]
    kept, rejected = apply_filters(texts, FILTERS)
    assert kept == [ENGLISH]
    assert rejected == [
        ("  ", "empty: whitespace only"),
        ("I'm sorry, but " + "no " * 20, "too_many_tokens: 23 > 20"),
        # Repetition runs before refusal: "I cannot" twice covers 14 of 22 word characters.
        ("I cannot help. I cannot help.", "top_2gram_char_fraction: 0.636 > 0.200"),
        (FRENCH, "wrong_language: fr (1.000) not in en"),
    ]


def test_apply_filters_reads_an_examples_response():
    def answered(response):
        return Example(task="t", prompt="p", source="s@1", run_id="r", response=response)

    good, refusal = answered(ENGLISH), answered("I am unable to see your account.")
    kept, rejected = apply_filters([good, refusal], FILTERS)
    assert kept == [good]
    assert rejected == [(refusal, "refusal_phrase: I am unable to")]
    unanswered = Example(task="t", prompt="p", source="s@1", run_id="r")
    with pytest.raises(ValueError, match=f"example {unanswered.id} has no response to filter"):
        apply_filters([unanswered], FILTERS)


def test_texts_shorter_than_gophers_document_minimum_are_not_checked():
    # Gopher's thresholds are for documents; in a one-line answer a product named twice
    # is a "top 2-gram" of 20 % already.
    short = "the cat and the cat and a dog"
    assert not_repetitive(short, RepetitionConfig()) == (True, "")
    assert not_repetitive(short, RepetitionConfig(min_words=0))[0] is False

import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from datagen.generation.labelled_prompts import MIN_ROWS_PER_RULE
from datagen.tasks import support_triage_vocab as vocab
from datagen.tasks.support_triage import TASK
from datagen.tasks.support_triage_tickets import (
    CATEGORIES,
    LABEL_KEYS,
    PRIORITIES,
    GeneratedTicket,
    TicketSignals,
    add_typos,
    generate_tickets,
    misspell,
    needs_human_for,
    primary_category,
    priority_for,
    reference_summary,
)

REPO = Path(__file__).resolve().parents[1]
ORDER_ID = re.compile(r"A-\d{6}")

# Every signal's keywords, the way a reader of the ticket would spot them.
SIGNAL_KEYWORDS = {
    "safety_hazard": vocab.HAZARD_KEYWORDS,
    "account_compromised": vocab.COMPROMISE_KEYWORDS,
    "legal_threat": vocab.THREAT_KEYWORDS,
    "angry": vocab.ANGRY_KEYWORDS,
    "deadline": vocab.DEADLINE_KEYWORDS,
    "repeat_contact": vocab.REPEAT_CONTACT_KEYWORDS,
    "asks_for_person": vocab.ASK_FOR_PERSON_KEYWORDS,
}
SIGNAL_SENTENCES = {
    "safety_hazard": vocab.HAZARD_SENTENCES,
    "account_compromised": vocab.COMPROMISE_SENTENCES,
    "legal_threat": vocab.THREAT_SENTENCES,
    "angry": vocab.ANGRY_SENTENCES,
    "deadline": vocab.DEADLINE_SENTENCES,
    "repeat_contact": vocab.REPEAT_CONTACT_SENTENCES,
    "asks_for_person": vocab.ASK_FOR_PERSON_SENTENCES,
}


def signals_in(text: str) -> TicketSignals:
    lowered = text.lower()
    return TicketSignals(
        **{flag: any(k in lowered for k in keywords) for flag, keywords in SIGNAL_KEYWORDS.items()}
    )


def intents_of(ticket: GeneratedTicket) -> list[str]:
    """Body category first, then the aside's, read from "<body>+<aside>"."""
    return [part.split("/")[0] for part in ticket.template_id.split("+")]


@pytest.fixture(scope="module")
def many_tickets() -> list[GeneratedTicket]:
    return [t for seed in (0, 1, 2, 3) for t in generate_tickets(500, seed)]


# --- determinism -----------------------------------------------------------------------


def test_same_count_and_seed_give_identical_tickets():
    assert generate_tickets(60, seed=7) == generate_tickets(60, seed=7)


def test_different_seeds_give_different_tickets():
    first, second = generate_tickets(20, seed=1), generate_tickets(20, seed=2)
    assert [t.text for t in first] != [t.text for t in second]


def test_tickets_do_not_depend_on_the_process_hash_seed():
    script = (
        "import json; from datagen.tasks.support_triage_tickets import generate_tickets; "
        "print(json.dumps([[t.text, t.label, t.template_id] for t in generate_tickets(30, 5)]))"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    ]
    here = [[t.text, t.label, t.template_id] for t in generate_tickets(30, 5)]
    assert json.loads(outputs[0]) == json.loads(outputs[1]) == here


def test_count_is_respected_and_negative_count_is_refused():
    assert generate_tickets(0, seed=0) == []
    assert len(generate_tickets(13, seed=0)) == 13
    with pytest.raises(ValueError, match="count must be >= 0"):
        generate_tickets(-1, seed=0)


# --- label shape -----------------------------------------------------------------------


def test_every_label_is_valid(many_tickets):
    for t in many_tickets:
        assert tuple(t.label) == LABEL_KEYS
        assert t.label["category"] in CATEGORIES
        assert t.label["priority"] in PRIORITIES
        assert t.label["order_id"] is None or re.fullmatch(r"A-\d{6}", t.label["order_id"])
        assert t.label["product"] is None or t.label["product"] in vocab.PRODUCTS
        assert isinstance(t.label["needs_human"], bool)
        assert 1 <= len(t.label["summary"].split()) <= 20, t.label["summary"]


def test_labels_pass_the_task_answer_schema(many_tickets):
    from datagen.tasks.support_triage import TriageAnswer

    for t in many_tickets[:300]:
        TriageAnswer.model_validate(t.label)


def test_order_id_is_verbatim_in_text_and_absent_when_none(many_tickets):
    for t in many_tickets:
        if t.label["order_id"] is None:
            assert ORDER_ID.search(t.text) is None, t.text
        else:
            assert ORDER_ID.findall(t.text) == [t.label["order_id"]], t.text


def test_the_labelled_product_is_the_only_product_named(many_tickets):
    for t in many_tickets:
        named = [p for p in vocab.PRODUCTS if p in t.text]
        assert named == ([t.label["product"]] if t.label["product"] else []), t.text


def test_distractor_numbers_appear_in_tickets_without_an_order_id(many_tickets):
    without_id = [t.text for t in many_tickets if t.label["order_id"] is None]
    assert any("$" in text for text in without_id)
    assert any("555" in text for text in without_id)  # phone numbers
    assert any("the order I placed on" in text for text in without_id)


def test_order_ids_and_decoys_are_dealt_two_and_one_in_five():
    # 200 tickets: 25 per category, five rounds of the order plan (id, id, decoy, none, none).
    tickets = [t for t in generate_tickets(200, seed=5) if t.label["category"] != "account_access"]
    rules = [TASK.rule_names(t.text, t.label, t.template_id) for t in tickets]
    assert sum(t.label["order_id"] is not None for t in tickets) == 7 * 10
    decoys = [t for t, names in zip(tickets, rules) if "order_id_decoy" in names]
    assert len(decoys) == 7 * 5
    assert all(t.label["order_id"] is None and ORDER_ID.search(t.text) is None for t in decoys)


@pytest.mark.parametrize(("count", "least"), [(48, 2), (144, MIN_ROWS_PER_RULE)])
def test_every_labelling_rule_gets_its_rows(count, least):
    """Dealt lessons: one round of every plan (48 tickets) gives each rule two rows, three
    rounds the build's minimum, whatever the seed."""
    for seed in range(4):
        counts = Counter(name for t in generate_tickets(count, seed)
                         for name in TASK.rule_names(t.text, t.label, t.template_id))
        assert min(counts[rule.name] for rule in TASK.labelling_rules) >= least, (seed, counts)


def test_account_access_has_an_order_id_only_when_about_a_purchase(many_tickets):
    for t in many_tickets:
        if t.label["category"] == "account_access" and t.label["order_id"]:
            assert t.template_id.startswith("account_access/check-order"), t.template_id


def body_template(template_id: str):
    body_id = template_id.split("+")[0]
    return next(b for b in vocab.BODY_TEMPLATES if b.template_id == body_id)


# --- the labelling rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    "intents, expected",
    [
        (["damaged_item", "product_question"], "damaged_item"),
        (["product_question", "damaged_item"], "damaged_item"),
        (["shipping_delay", "cancellation"], "cancellation"),
        (["refund_request", "wrong_item"], "wrong_item"),
        (["billing_error", "account_access"], "account_access"),
        (["product_question"], "product_question"),
    ],
)
def test_primary_category_follows_precedence(intents, expected):
    assert primary_category(intents) == expected


@pytest.mark.parametrize(
    "category, secondary, signals, expected",
    [
        ("product_question", None, TicketSignals(), "low"),
        ("shipping_delay", None, TicketSignals(), "normal"),
        ("cancellation", "product_question", TicketSignals(), "normal"),
        ("refund_request", None, TicketSignals(), "normal"),
        ("damaged_item", None, TicketSignals(), "high"),
        ("wrong_item", "shipping_delay", TicketSignals(), "high"),
        ("billing_error", None, TicketSignals(), "high"),
        ("account_access", None, TicketSignals(), "high"),
        ("refund_request", "damaged_item", TicketSignals(), "high"),
        ("product_question", None, TicketSignals(angry=True), "high"),
        ("shipping_delay", None, TicketSignals(deadline=True), "high"),
        ("cancellation", None, TicketSignals(repeat_contact=True), "high"),
        ("product_question", None, TicketSignals(asks_for_person=True), "low"),
        ("product_question", None, TicketSignals(safety_hazard=True), "urgent"),
        ("account_access", None, TicketSignals(account_compromised=True), "urgent"),
        ("shipping_delay", None, TicketSignals(legal_threat=True, angry=True), "urgent"),
    ],
)
def test_priority_for(category, secondary, signals, expected):
    assert priority_for(category, secondary, signals) == expected


@pytest.mark.parametrize(
    "category, priority, asks_for_person, expected",
    [
        ("shipping_delay", "normal", False, False),
        ("shipping_delay", "urgent", False, True),
        ("product_question", "low", True, True),
        ("refund_request", "normal", False, True),
        ("billing_error", "high", False, True),
        ("damaged_item", "high", False, True),
        ("wrong_item", "high", False, False),
        ("account_access", "high", False, False),
        ("cancellation", "high", False, False),
    ],
)
def test_needs_human_for(category, priority, asks_for_person, expected):
    assert needs_human_for(category, priority, asks_for_person) == expected


def test_label_can_be_recomputed_from_the_text(many_tickets):
    for t in many_tickets:
        intents = intents_of(t)
        signals = signals_in(t.text)
        category = primary_category(intents)
        secondary = intents[1] if len(intents) == 2 else None
        priority = priority_for(category, secondary, signals)
        assert t.label["category"] == category, t.template_id
        assert t.label["priority"] == priority, t.text
        needs_human = needs_human_for(category, priority, signals.asks_for_person)
        assert t.label["needs_human"] == needs_human, t.text


def test_a_safety_hazard_keyword_always_means_urgent(many_tickets):
    hazardous = [t for t in many_tickets if any(k in t.text.lower() for k in vocab.HAZARD_KEYWORDS)]
    assert len(hazardous) >= 20
    assert all(t.label["priority"] == "urgent" and t.label["needs_human"] for t in hazardous)


def test_plain_product_questions_are_low_and_raised_ones_are_not(many_tickets):
    questions = [t for t in many_tickets if t.label["category"] == "product_question"]
    # Asking for a person calls for a human but does not raise priority.
    not_raising = (TicketSignals(), TicketSignals(asks_for_person=True))
    plain = [t for t in questions if signals_in(t.text) in not_raising]
    raised = [t for t in questions if t not in plain]
    assert len(plain) >= 100 and len(raised) >= 20
    assert {t.label["priority"] for t in plain} == {"low"}
    assert "low" not in {t.label["priority"] for t in raised}


def test_every_signal_appears_in_generated_tickets(many_tickets):
    seen = Counter(
        flag for t in many_tickets for flag, on in vars(signals_in(t.text)).items() if on
    )
    assert set(seen) == set(SIGNAL_KEYWORDS)
    assert min(seen.values()) >= 20


# --- vocabulary hygiene: what makes the label recomputable from the text -----------------


def non_signal_strings() -> list[str]:
    templates = vocab.BODY_TEMPLATES + vocab.ASIDE_TEMPLATES
    return (
        [t.text for t in templates]
        + list(vocab.GREETINGS + vocab.SIGN_OFFS + vocab.NAMES + vocab.PHONE_NUMBERS)
        + list(vocab.AMOUNTS + vocab.DELAYS + vocab.DATES + vocab.COUNTRIES + vocab.WRONG_THINGS)
        + list(vocab.DEADLINE_DAYS + vocab.OCCASIONS)
        + list(vocab.ORDER_ID_PHRASES + vocab.ORDER_PHRASES_WITHOUT_ID + vocab.ORDER_DECOY_PHRASES)
        + list(vocab.PRODUCTS)
    )


def test_no_signal_keyword_hides_in_ordinary_text():
    for text in non_signal_strings():
        assert signals_in(text) == TicketSignals(), text


def test_each_signal_sentence_carries_its_own_keyword_and_no_other():
    for flag, sentences in SIGNAL_SENTENCES.items():
        for sentence in sentences:
            on = {name for name, value in vars(signals_in(sentence)).items() if value}
            assert on == {flag}, sentence


def test_product_names_do_not_overlap_or_hide_elsewhere():
    for product in vocab.PRODUCTS:
        assert [p for p in vocab.PRODUCTS if product in p] == [product]
    for text in non_signal_strings()[: -len(vocab.PRODUCTS)]:
        assert not any(p in text for p in vocab.PRODUCTS), text


def test_no_vocabulary_string_looks_like_an_order_id():
    for text in non_signal_strings():
        assert ORDER_ID.search(text) is None, text


def test_each_category_has_at_least_six_body_templates_and_ids_are_unique():
    per_category = Counter(t.category for t in vocab.BODY_TEMPLATES)
    assert set(per_category) == set(CATEGORIES)
    assert min(per_category.values()) >= 6
    ids = [t.template_id for t in vocab.BODY_TEMPLATES + vocab.ASIDE_TEMPLATES]
    assert len(ids) == len(set(ids))


def test_worst_case_summary_fits_twenty_words():
    longest = {
        name: max(values, key=lambda v: len(v.split()))
        for name, values in {
            "product": vocab.PRODUCTS,
            "delay": vocab.DELAYS,
            "date": vocab.DATES,
            "amount": vocab.AMOUNTS,
            "country": vocab.COUNTRIES,
        }.items()
    }
    for body in vocab.BODY_TEMPLATES:
        for aside in (None,) + vocab.ASIDE_TEMPLATES:
            for flag in ("safety_hazard", "account_compromised", "legal_threat"):
                summary = reference_summary(body, aside, TicketSignals(**{flag: True}), longest)
                assert len(summary.split()) <= 20, summary


# --- variety -------------------------------------------------------------------------


def test_forty_tickets_cover_every_category_five_times():
    counts = Counter(t.label["category"] for t in generate_tickets(40, seed=1))
    assert counts == {category: 5 for category in CATEGORIES}


def test_two_hundred_tickets_are_varied():
    tickets = generate_tickets(200, seed=3)
    assert len({t.text for t in tickets}) >= 190
    assert len({t.template_id for t in tickets}) >= 60  # 30% of 200
    # of 57 bodies; ids, decoys and hazards are dealt to bodies that can carry them
    assert len({t.template_id.split("+")[0] for t in tickets}) >= 45
    assert 25 <= sum("+" in t.template_id for t in tickets) <= 60  # mixed intents
    lengths = [len(t.text.split()) for t in tickets]
    assert min(lengths) <= 12 and max(lengths) >= 50  # a terse line to a short paragraph


def test_about_a_fifth_of_tickets_have_typos(many_tickets):
    # A typo turns a vocabulary word into a non-word (a drop can land on a real word, so
    # this undercounts a little).
    known = {
        w
        for text in non_signal_strings() + [s for group in SIGNAL_SENTENCES.values() for s in group]
        for w in re.findall(r"[a-z]+", text.lower())
    }
    with_typo = [t for t in many_tickets if set(re.findall(r"[a-z]+", t.text.lower())) - known]
    assert 0.14 <= len(with_typo) / len(many_tickets) <= 0.24


# --- typos -----------------------------------------------------------------------------


def is_one_typo(original: str, typo: str) -> bool:
    if len(typo) == len(original) + 1:  # a doubled letter
        return any(typo[:i] + typo[i + 1 :] == original for i in range(len(typo)))
    if len(typo) == len(original) - 1:  # a dropped letter
        return any(original[:i] + original[i + 1 :] == typo for i in range(len(original)))
    differ = [i for i in range(len(original)) if original[i] != typo[i]]
    return len(differ) == 2 and differ[1] == differ[0] + 1 and sorted(original) == sorted(typo)


def test_add_typos_misspells_ordinary_words_only():
    text = "please check the tracking for order A-123456 and my espresso machine today"
    typoed = add_typos(text, ("A-123456", "espresso machine"), 3, random.Random(0))
    assert "A-123456" in typoed and "espresso machine" in typoed
    changed = [(a, b) for a, b in zip(text.split(), typoed.split()) if a != b]
    assert len(changed) == 3
    assert all(is_one_typo(a, b) for a, b in changed)
    assert {a for a, _ in changed} <= {"please", "check", "tracking", "order", "today"}


def test_add_typos_leaves_text_without_candidates_alone():
    text = "Got it. A-123456, desk lamp!"
    assert add_typos(text, ("A-123456", "desk lamp"), 3, random.Random(0)) == text


@pytest.mark.parametrize("seed", range(30))
def test_misspell_makes_exactly_one_edit(seed):
    assert is_one_typo("arrived", misspell("arrived", random.Random(seed)))

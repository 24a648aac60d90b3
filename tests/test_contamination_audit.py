import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datagen.exports.formats import write_exports
from datagen.foundation.records import Example, PreferencePair
from datagen.tasks.support_triage import TASK
from evals.contamination.audit import AuditConfig, audit
from evals.contamination.audit_inputs import AuditInputError, AuditRow, read_gold, read_train, row_texts, train_files
from evals.contamination.audit_words import word_hashes, word_offsets, words
from evals.contamination.ngram_overlap import GoldNgramIndex, SharedSpan
from evals.contamination.overlap_report import _marked, overlap_html, overlap_json
from gold.signed_versions import entry_digest
from tests.locked_gold import lock_gold_rows

REPO = Path(__file__).resolve().parents[1]
FAST = ["exact", "ngram", "minhash"]

# ---- the planted-contamination fixture: six gold tickets, a training set with four plants --

GOLD = [
    AuditRow("g-damaged", "gold:1", "My order A-104233 arrived this morning and the glass lid of the slow cooker was "
             "shattered into a dozen pieces inside the box. I would like a replacement sent out before the "
             "weekend, please.", '{"category": "damaged_item", "priority": "high"}'),
    AuditRow("g-refund", "gold:2", "I returned the hiking boots three weeks ago and the courier confirmed you "
             "received them on May 3, but the refund of $129.50 still has not appeared on my credit card. When "
             "will it be processed?", '{"category": "refund", "priority": "medium"}'),
    AuditRow("g-password", "gold:3", "Every time I try to reset my password the email with the reset link never "
             "arrives, and I have already checked the spam folder twice. Can you unlock my account manually so "
             "I can see my orders?", '{"category": "account", "priority": "medium"}'),
    AuditRow("g-address", "gold:4", "I just realised I typed my old street address when I placed order A-552190 "
             "an hour ago. Is it still possible to change the delivery address to 14 Elm Road before the parcel "
             "leaves the warehouse?", '{"category": "shipping", "priority": "high"}'),
    AuditRow("g-warranty", "gold:5", "The coffee grinder I bought last spring stopped working completely: the "
             "motor just hums and the blades do not turn. Is this covered by the warranty, and how do I send it "
             "in?", "Warranty claim: the grinder's motor hums but the blades do not turn, which the two year "
             "warranty covers. Send the repair form with your order number and we will email you a prepaid "
             "shipping label."),
    AuditRow("g-norway", "gold:6", "Do you ship to Norway, and if so, how much does express delivery cost for a "
             "parcel of about four kilograms?", '{"category": "shipping_question", "priority": "low"}'),
]

# Same task, same topics as the gold rows, other requests: none of them may be flagged.
CLEAN = [
    "The blender I ordered came with a cracked jug. I would rather have my money back than a replacement, "
    "can you arrange a return?",
    "I was charged twice for order A-771204, once on Monday and again on Tuesday. Please refund the duplicate "
    "payment of $42.00.",
    "I changed my email address last month and now I cannot log in with the new one. Which address should I "
    "use to sign in?",
    "Can I add a gift message to an order that I placed yesterday, or is it too late now that it has been "
    "confirmed?",
    "The tracking page for my parcel has said 'in transit' for nine days without any update. Has it been lost?",
    "Does the stand mixer come with a dough hook, or do I have to buy it separately as an accessory?",
    "I would like to close my account and have all of my personal data deleted, as allowed under GDPR.",
    "Your website keeps showing an error when I try to apply the discount code SPRING20 at checkout.",
    "The sofa cushions I received are a darker grey than the photos on your site. Can I exchange them for the "
    "lighter shade?",
    "My kettle's warranty card is missing from the box. Do I need it to make a claim later, or is the receipt "
    "enough?",
    "Is it possible to pick up my order from your store in Leeds instead of having it delivered to my flat?",
    "I ordered two lamps but only one arrived in the parcel. Is the second one coming in a separate delivery?",
]

# Light paraphrases of every gold prompt: same request, other words. `PLANTED_PARAPHRASE` is
# planted; all of them calibrate AuditConfig.cosine_threshold against CLEAN.
PARAPHRASES = {
    "g-damaged": "Order A-104233 came today and the slow cooker's glass lid had broken into lots of pieces in "
    "the box. Could you please send me a replacement before the weekend?",
    "g-refund": "Three weeks ago I sent back the hiking boots, and the courier says you got them on May 3, yet "
    "my credit card still shows no refund of $129.50. When are you going to process it?",
    "g-password": "Whenever I attempt a password reset, the reset link email never shows up, and I've looked "
    "in my spam folder twice already. Could you manually unlock my account so I can view my orders?",
    "g-address": "An hour ago I placed order A-552190 but I entered my previous street address by mistake. Can "
    "you still switch the shipping address to 14 Elm Road before the package leaves your warehouse?",
    "g-warranty": "Last spring I bought a coffee grinder and now it has died: the motor hums but the blades "
    "won't spin. Does the warranty cover that, and how can I send it back?",
    "g-norway": "Do you deliver to Norway? If you do, what would express shipping cost for a package weighing "
    "roughly four kilos?",
}
PLANTED_PARAPHRASE = "g-address"
SPAN_13 = "the email with the reset link never arrives, and I have already checked"
WARRANTY_PROMPT = "What should I tell a customer whose grinder motor hums but does not turn?"


def train_rows() -> list[AuditRow]:
    rows = [AuditRow(f"clean-{i}", f"train:{i}", text, '{"category": "other", "priority": "low"}')
            for i, text in enumerate(CLEAN)]
    rows += [
        AuditRow("plant-verbatim", "train:verbatim", GOLD[0].prompt, GOLD[0].answer),
        AuditRow("plant-case", "train:case", "I RETURNED THE HIKING BOOTS three weeks ago  and the courier\n"
                 "confirmed you received them on May 3, but the refund of $129.50 still has not appeared on my "
                 "CREDIT CARD.   When will it be processed?", "refund"),
        AuditRow("plant-span", "train:span", f"Quick question about your newsletter: last week {SPAN_13} with my "
                 "IT team about filters. Which sender address do you use, so that we can whitelist it?", "ok"),
        AuditRow("plant-paraphrase", "train:paraphrase", PARAPHRASES[PLANTED_PARAPHRASE], "ok"),
        AuditRow("plant-answer", "train:answer", WARRANTY_PROMPT, GOLD[4].answer),
    ]
    return rows


@pytest.fixture(scope="module")
def planted():
    """The full audit, embeddings included (the sentence model loads once for the module)."""
    return audit(GOLD, train_rows(), AuditConfig())


def test_planted_contamination_is_flagged_by_the_right_methods(planted):
    flagged = {row.gold.id: row.flagged_by for row in planted.gold}
    assert flagged == {
        "g-damaged": ("exact", "ngram", "minhash", "embedding"),
        "g-refund": ("exact", "ngram", "minhash", "embedding"),
        "g-password": ("ngram",),
        "g-address": ("embedding",),
        "g-warranty": ("ngram",),
        "g-norway": (),
    }
    assert planted.flagged_train == {
        "train:verbatim": ["g-damaged"], "train:case": ["g-refund"], "train:span": ["g-password"],
        "train:paraphrase": ["g-address"], "train:answer": ["g-warranty"],
    }
    assert planted.train_rows == len(CLEAN) + 5


def test_the_13_word_span_is_measured_and_located(planted):
    password = next(row for row in planted.gold if row.gold.id == "g-password")
    best = password.matches[0]
    assert (best.train.id, best.exact, best.prompt_span, best.answer_span) == ("plant-span", False, 13, 0)
    (span,) = best.spans
    assert (span.gold_field, span.train_field, span.words) == ("prompt", "prompt", 13)
    assert GOLD[2].prompt[slice(*span.gold_chars)] == SPAN_13
    assert best.train.prompt[slice(*span.train_chars)] == SPAN_13
    assert best.risk == 1.0


def test_a_copied_answer_is_found_on_the_answer_side(planted):
    warranty = next(row for row in planted.gold if row.gold.id == "g-warranty")
    best = warranty.matches[0]
    assert (best.train.id, best.prompt_span, best.answer_span) == ("plant-answer", 0, 36)
    assert [(s.gold_field, s.train_field, s.words) for s in best.spans] == [("answer", "answer", 36)]


def test_clean_rows_are_close_to_nothing(planted):
    norway = next(row for row in planted.gold if row.gold.id == "g-norway")
    assert norway.flagged_by == () and norway.risk < 1
    # Every gold row lists its top_k closest rows even when clean: the auditor sees the margin.
    assert [len(row.matches) for row in planted.gold] == [5] * 6
    for row in planted.gold:
        for match in row.matches:
            if match.train.id.startswith("clean-"):
                assert match.flagged_by == () and match.prompt_span == 0 and match.jaccard < 0.2


def test_cosine_threshold_separates_paraphrases_from_clean_rows(planted):
    from evals.contamination.prompt_embeddings import embed_texts

    gold = embed_texts([row.prompt for row in GOLD])
    paraphrase = np.sum(embed_texts([PARAPHRASES[row.id] for row in GOLD]) * gold, axis=1)
    clean = embed_texts(CLEAN) @ gold.T
    threshold = AuditConfig().cosine_threshold
    assert paraphrase.min() >= threshold > clean.max()


# ---- small literal cases, exact numbers -------------------------------------------------


def test_words_fold_case_width_and_punctuation():
    assert words("Hello,  WORLD!\nIt's Ｆｕｌｌ-width, Straße ½") == [
        "hello", "world", "it", "s", "full", "width", "strasse", "1", "2"
    ]
    # NFKC turns "½" into "1⁄2": one match of the text can give several words, at its offsets.
    assert word_offsets("Ab, cd½") == (["ab", "cd1", "2"], [(0, 2), (4, 7), (4, 7)])


def test_word_hashes_hash_each_word_as_words_reads_it():
    texts = ["Hello, WORLD! it's", "", "Straße ½ café—bar", "x"]
    hashes, counts, starts, ends = word_hashes(texts)
    assert counts.tolist() == [4, 0, 5, 1]
    # The same words, read from one normalized text, hash the same; ten words, ten hashes.
    assert hashes.tolist() == word_hashes([" ".join(w for t in texts for w in words(t))])[0].tolist()
    assert len(set(hashes.tolist())) == 10
    # Characters of each word in its text (of an ASCII text; "straße" counts in its normalized words).
    assert list(zip(starts.tolist(), ends.tolist()))[:4] == [(0, 5), (7, 12), (14, 16), (17, 18)]


def test_shared_span_is_grown_to_its_full_length_in_characters_of_both_sides():
    gold = [("one two three four five six seven eight nine ten", "")]
    train = [("zero ONE two, three four five six seven eight nine eleven", "x"), ("one two three", "")]
    spans = GoldNgramIndex(gold, n=8, template_rows=5).shared_spans(train)
    assert spans == {(0, 0): [SharedSpan("prompt", "prompt", 9, (0, 44), (5, 50))]}


def test_text_many_gold_rows_repeat_seeds_no_match_but_a_copy_is_measured_in_full():
    template = "please classify this support ticket into exactly one of the categories"
    gold = [(f"{template} ticket number {n} says my parcel {n} is late", "") for n in range(7)]
    index = GoldNgramIndex(gold, n=8, template_rows=5)
    # Common to all 7 rows: the 4 8-grams inside the template and 2 running into "ticket number".
    assert index.template_ngrams == 6
    spans = index.shared_spans([(template + " and nothing else", ""), (gold[3][0], "")])
    assert list(spans) == [(1, 3)]
    assert spans[1, 3][0].words == 20  # the whole row, template included


def test_exact_scores_without_embeddings():
    gold = [AuditRow("g", "gold:1", GOLD[0].prompt, GOLD[0].answer)]
    train = [AuditRow("t", "train:1", GOLD[0].prompt.upper(), "x"), AuditRow("c", "train:2", CLEAN[0], "y")]
    result = audit(gold, train, AuditConfig(methods=FAST))
    (row,) = result.gold
    copy = row.matches[0]
    assert (copy.exact, copy.prompt_span, copy.answer_span, copy.jaccard, copy.cosine) == (True, 35, 0, 1.0, None)
    assert copy.flagged_by == ("exact", "ngram", "minhash")
    assert copy.risk == 35 / 13  # the largest score over its threshold: 35 shared words over 13
    assert len(row.matches) == 1  # the clean row shares no 8-gram and no LSH band
    assert (result.train_rows, result.train_bytes) == (2, len(GOLD[0].prompt) + 1 + len(CLEAN[0]) + 1)


def test_embedding_scores_come_from_the_injected_embedder():
    def embed(texts):  # a toy embedder: texts about boots point one way, the rest another
        return np.array([[1.0, 0.0] if "boots" in text else [0.6, 0.8] for text in texts])

    gold = [AuditRow("g", "gold:1", "Where are my boots?", "")]
    train = [AuditRow("a", "train:1", "My boots never came", ""), AuditRow("b", "train:2", "Refund me", "")]
    result = audit(gold, train, AuditConfig(methods=["embedding"], top_k=2), embed=embed)
    assert [(m.train.id, m.cosine, m.flagged_by, m.risk) for m in result.gold[0].matches] == [
        ("a", 1.0, ("embedding",), 1.0 / 0.85), ("b", 0.6, (), 0.6 / 0.85)
    ]


def test_a_short_gold_prompt_found_whole_is_flagged_below_13_words():
    gold = [AuditRow("g", "gold:1", "where is my blue winter coat order", ""),
            AuditRow("h", "gold:2", "can you please tell me where my blue winter coat order is", "")]
    train = [AuditRow("t", "train:1", "Hi! Can you please tell me where my blue winter coat order is? Thanks", "")]
    result = audit(gold, train, AuditConfig(methods=["ngram"]))
    assert [(r.gold.id, r.flagged_by, [m.prompt_span for m in r.matches]) for r in result.gold] == [
        ("g", (), []), ("h", ("ngram",), [12])
    ]


def test_config_rejects_a_report_size_above_the_flag_size():
    with pytest.raises(ValueError, match="report_ngram 14 is above flag_ngram 13"):
        AuditConfig(report_ngram=14)


# ---- reading training sets in every layout ------------------------------------------------


def test_every_layout_gives_prompt_and_answer():
    assert row_texts({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"},
                                   {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"},
                                   {"role": "assistant", "content": "A2"}]}) == ("Q1\n\nQ2", "A1\n\nA2", ("Q1", "Q2"))
    assert row_texts({"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}) == (
        "Q", "A", ())
    assert row_texts({"instruction": "Do it.", "input": "Q", "output": "A"}) == ("Do it.\n\nQ", "A", ())
    assert row_texts({"instruction": "Do it.", "input": "Q2", "output": "A2", "history": [["Q1", "A1"]]}) == (
        "Q1\n\nDo it.\n\nQ2", "A1\n\nA2", ("Q1", "Do it.\n\nQ2"))
    assert row_texts({"prompt": "Q"}) == ("Q", "", ())
    assert row_texts({"prompt": [{"role": "user", "content": "Q"}], "chosen": [{"role": "assistant",
                      "content": "good"}], "rejected": "bad"}) == ("Q", "good\n\nbad", ())
    # A pair's shared history: its user turns are prompt, its assistant turns shown answers.
    assert row_texts({"prompt": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
                                 {"role": "user", "content": "Q2"}], "chosen": "good", "rejected": "bad"}) == (
        "Q1\n\nQ2", "A1\n\ngood\n\nbad", ("Q1", "Q2"))


def test_an_export_folder_is_read_through_its_sft_and_dpo_files(tmp_path):
    answer = GOLD[0].answer
    sft = [Example(task=TASK.name, prompt=GOLD[0].prompt, response=answer, source="t", run_id="r")]
    pairs = [PreferencePair(task=TASK.name, prompt=CLEAN[0], chosen=answer, rejected="{}", strategy="s",
                            evidence="e", source="t", run_id="r")]
    write_exports(tmp_path, sft, pairs, TASK)
    files = train_files(tmp_path)
    assert files == [tmp_path / "trl_sft/train.jsonl", tmp_path / "trl_dpo/train.jsonl"]
    unread = []
    rows = [row for path in files for row in read_train(path, unread)]
    assert [(row.id, row.prompt, row.answer) for row in rows] == [
        (sft[0].id, GOLD[0].prompt, answer), (pairs[0].id, CLEAN[0], answer + "\n\n{}")
    ]
    assert unread == []


def test_unreadable_rows_are_returned_with_their_reason(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"prompt": "fine"}\nnot json\n{"text": "unknown layout"}\n')
    unread = []
    assert [row.prompt for row in read_train(path, unread)] == ["fine"]
    assert [(r.line, r.reason.split(": ")[1]) for r in unread] == [(2, "invalid_json"), (3, "unknown_layout")]


def test_a_gold_file_that_is_not_a_locked_version_is_refused(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text('{"prompt": "ok"}\n{"answer": "no prompt"}\n')
    with pytest.raises(AuditInputError, match=f"{tmp_path}: not locked"):
        read_gold(path)


# ---- conversations: every turn is audited ------------------------------------------------

SHORT_GOLD = AuditRow("g-short", "gold:7", "Where is my blue winter coat?", "")


def chat(*turns: str) -> dict:
    return {"messages": [{"role": "system", "content": "Triage the ticket."}] + [
        {"role": role, "content": text} for role, text in zip(["user", "assistant"] * 3, turns)]}


def test_a_gold_prompt_hidden_in_a_later_turn_of_a_conversation_is_caught(tmp_path):
    """The attacker's move: open a training chat with an innocent ticket, hide the gold one in
    turn 2. Joined with the first turn it resembles the gold prompt far less than itself;
    compared turn by turn, each method sees it whole."""
    path = tmp_path / "train.jsonl"
    rows = [
        chat(CLEAN[0], "{}", GOLD[2].prompt.upper(), "{}"),  # a copy, its case changed
        chat(CLEAN[1], "{}", GOLD[1].prompt.replace("When will it be processed?", "When do you process it?"), "{}"),
        chat(CLEAN[2], "{}", PARAPHRASES["g-address"], "{}"),  # a paraphrase
        chat(CLEAN[3], "{}", SHORT_GOLD.prompt + " It has been two weeks.", "{}"),  # too short for any n-gram
        chat(CLEAN[4], "{}", CLEAN[5], "{}"),
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    unread = []
    train = list(read_train(path, unread))
    assert unread == [] and train[0].user_turns == (CLEAN[0], GOLD[2].prompt.upper())
    result = audit(GOLD + [SHORT_GOLD], train, AuditConfig())
    by_gold = {row.gold.id: (row.matches[0].train.where.rsplit(":", 1)[1], row.matches[0].flagged_by)
               for row in result.flagged}
    assert by_gold == {"g-password": ("1", ("exact", "ngram", "minhash", "embedding")),
                       "g-refund": ("2", ("ngram", "minhash", "embedding")),
                       "g-address": ("3", ("embedding",)),
                       "g-short": ("4", ("embedding",))}
    assert f"{path}:5" not in result.flagged_train
    # The same rows with only their joined text: the paraphrase and the short prompt get through.
    joined = audit(GOLD + [SHORT_GOLD], [dataclasses.replace(row, user_turns=()) for row in train], AuditConfig())
    assert {row.gold.id for row in joined.flagged} == {"g-password", "g-refund"}


def test_a_gold_answer_in_the_shared_history_of_a_preference_row_is_caught(tmp_path):
    path = tmp_path / "dpo.jsonl"
    history = [{"role": "user", "content": WARRANTY_PROMPT}, {"role": "assistant", "content": GOLD[4].answer},
               {"role": "user", "content": "Thanks. And the grinder's receipt?"}]
    path.write_text(json.dumps({"prompt": history, "chosen": "Keep it.", "rejected": "Bin it."}) + "\n")
    result = audit(GOLD, read_train(path, []), AuditConfig(methods=FAST))
    assert result.flagged_train == {f"{path}:1": ["g-warranty"]}


# ---- the report ---------------------------------------------------------------------------


def test_marked_text_is_escaped_around_the_marks():
    assert _marked("a <b> & c d", [(4, 7), (0, 1)]) == "<mark>a</mark> &lt;b<mark>&gt; &amp;</mark> c d"


def test_report_marks_spans_and_escapes_every_text(planted):
    hostile = AuditRow("g-html", "gold:7", "<script>alert(1)</script> " + GOLD[5].prompt, "")
    result = audit([hostile], [AuditRow("t", "train:1", GOLD[5].prompt, "<b>")], AuditConfig(methods=FAST))
    page = overlap_html(result, "demo/v1", ["train.jsonl"], [])
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<mark>Do you ship to Norway" in page
    report = overlap_json(planted, "demo/v1", ["train.jsonl"], [])
    assert report["summary"]["flagged_gold_rows"] == 5
    assert report["summary"]["flagged_by_method"] == {"exact": 2, "ngram": 4, "minhash": 2, "embedding": 3}
    span = report["gold_rows"][2]["matches"][0]["spans"][0]
    assert (span["text"], span["words"]) == (SPAN_13, 13)


# ---- the command --------------------------------------------------------------------------


def crucible(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", "audit", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def gold_set(tmp_path) -> Path:
    """The six gold rows locked and signed as `demo/v1`, each answer as a regression reference."""
    return lock_gold_rows(tmp_path / "gold/sets", "demo", "gold.regression_schema:GENERAL_REGRESSION",
                          [(r.prompt, {"answer": r.answer or "-", "match": "contains", "skill": "facts"})
                           for r in GOLD])


def write_trl(path: Path, prompts: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": p},
                                                     {"role": "assistant", "content": a}]}) + "\n"
                            for p, a in prompts))
    return path


def test_cli_exits_1_and_names_the_gold_rows_when_contaminated(tmp_path, gold_set):
    train = write_trl(tmp_path / "train.jsonl", [(row.prompt, row.answer) for row in train_rows()])
    done = crucible("--gold", str(gold_set), "--train", str(train), "--out", str(tmp_path / "audit"))
    assert done.returncode == 1, done.stderr
    assert "CONTAMINATED: 5 of 6 gold rows are in the training data (5 training rows):" in done.stdout
    assert f" ({gold_set}/records.jsonl:1): exact, ngram, minhash, embedding; closest {train}:13" in done.stdout
    report = json.loads((tmp_path / "audit/overlap.json").read_text())
    digest = entry_digest(json.loads((gold_set.parent / "versions.json").read_text())["versions"][0])
    assert report["gold"] == f"demo/v1 (digest {digest[:16]})" and report["summary"]["flagged_gold_rows"] == 5
    assert "<mark>" in (tmp_path / "audit/overlap.html").read_text()


def test_cli_exits_0_on_a_clean_set(tmp_path, gold_set):
    train = write_trl(tmp_path / "train.jsonl", [(text, "ok") for text in CLEAN])
    done = crucible("--gold", str(gold_set / "records.jsonl"), "--train", str(train), "--out",
                    str(tmp_path / "audit"), "--no-embedding")
    assert done.returncode == 0, done.stderr
    assert "clean: no gold row was found in the training data" in done.stdout
    assert (tmp_path / "audit/overlap.html").is_file()


def test_cli_exits_2_naming_the_bad_file(tmp_path, gold_set):
    missing = tmp_path / "nothing.jsonl"
    done = crucible("--gold", str(gold_set), "--train", str(missing), "--out", str(tmp_path / "a"), "--no-embedding")
    assert (done.returncode, done.stderr) == (2, f"crucible audit: {missing}: no such file or folder\n")
    csv = tmp_path / "train.csv"
    csv.write_text("prompt\nhello\n")
    done = crucible("--gold", str(gold_set), "--train", str(csv), "--out", str(tmp_path / "a"), "--no-embedding")
    assert done.returncode == 2 and f"{csv}: cannot import a .csv file" in done.stderr
    done = crucible("--gold", str(tmp_path), "--train", str(csv), "--out", str(tmp_path / "a"), "--no-embedding")
    assert done.returncode == 2 and f"{tmp_path}: not locked (no manifest.json)" in done.stderr

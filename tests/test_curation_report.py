import enum
from typing import Literal

import polars as pl
from pydantic import BaseModel

from datagen.filters.answer_filters import AnswerFilterConfig, filter_answers, reason_kind
from datagen.foundation.hashing import canonical_json
from datagen.foundation.records import Example, examples_to_frame
from datagen.foundation.task import label_fields
from datagen.reports.curation_report import curation_html, curation_markdown, curation_report
from datagen.tasks.support_triage import TASK

PLOT = '<img src="data:image/png;base64,'


def _label(category: str, priority: str, needs_human: bool) -> dict:
    return {"category": category, "priority": priority, "order_id": None, "product": "desk lamp",
            "needs_human": needs_human, "summary": "Customer writes about a desk lamp."}


def _answer(prompt, response, *, label=None, template_id=None, finish_reason="stop", source="templates@1"):
    return Example(
        task="support_triage", prompt=prompt, source=source, run_id="r1", response=response,
        reference=None if label is None else canonical_json(label), template_id=template_id,
        finish_reason=finish_reason,
    )


def _verified(answers: list[Example]):
    """The three tables of the `verified` stage, made as the build flow makes them."""
    kept, rejected = filter_answers(answers, TASK, AnswerFilterConfig())
    rejects = examples_to_frame([a for a, _ in rejected]).with_columns(
        reason=pl.Series([reason_kind(r) for _, r in rejected], dtype=pl.String),
        detail=pl.Series([r for _, r in rejected], dtype=pl.String),
    )
    return examples_to_frame(answers), examples_to_frame(kept), rejects


def _triage_run():
    ship, bill = _label("shipping_delay", "normal", False), _label("billing_error", "urgent", True)
    question = _label("product_question", "low", False)
    answers = [
        _answer("late lamp", TASK.render_answer(ship), label=ship, template_id="t_ship"),
        _answer("charged twice", TASK.render_answer(bill), label=bill, template_id="t_bill"),
        _answer("broken lamp", '{"category": "dam', label=_label("damaged_item", "high", True),
                template_id="t_dmg", finish_reason="length"),
        _answer("where is it", TASK.render_answer(bill), label=ship, template_id="t_ship"),
        _answer("lamp colours?", TASK.render_answer(question), source="self_instruct@1"),
        _answer("<script>alert(1)</script>", "not json", source="self_instruct@1"),
        _answer("cancel it", '{"category": "canc', label=_label("cancellation", "normal", False),
                template_id="t_cancel", finish_reason="length"),
    ]
    return _verified(answers)


def test_counts_rejections_labels_and_survival():
    report = curation_report(*_triage_run(), TASK)

    assert report["counts"] == {"answers": 7, "kept": 3, "rejected": 4}
    assert report["rejected_by_filter"] == [
        {"filter": "truncated", "rows": 2, "share": 2 / 7},
        {"filter": "wrong_fields", "rows": 1, "share": 1 / 7},
        {"filter": "unparseable", "rows": 1, "share": 1 / 7},
    ]
    assert [(e["filter"], e["prompt"]) for e in report["reject_examples"]] == [
        ("truncated", "broken lamp"), ("wrong_fields", "where is it"), ("unparseable", "<script>alert(1)</script>"),
    ]
    assert report["labels"]["category"] == {
        "before": {"shipping_delay": 2, "refund_request": 0, "damaged_item": 1, "wrong_item": 0, "account_access": 0,
                   "billing_error": 1, "product_question": 1, "cancellation": 1, "(unparseable)": 1},
        "after": {"shipping_delay": 1, "refund_request": 0, "damaged_item": 0, "wrong_item": 0, "account_access": 0,
                  "billing_error": 1, "product_question": 1, "cancellation": 0, "(unparseable)": 0},
    }
    assert report["labels"]["needs_human"] == {
        "before": {"true": 2, "false": 4, "(unparseable)": 1},
        "after": {"true": 1, "false": 2, "(unparseable)": 0},
    }
    assert list(report["labels"]) == ["category", "priority", "needs_human"]
    assert report["by_template"] == [
        {"key": "(none)", "before": 2, "after": 1, "kept_share": 0.5},
        {"key": "t_ship", "before": 2, "after": 1, "kept_share": 0.5},
        {"key": "t_bill", "before": 1, "after": 1, "kept_share": 1.0},
        {"key": "t_cancel", "before": 1, "after": 0, "kept_share": 0.0},
        {"key": "t_dmg", "before": 1, "after": 0, "kept_share": 0.0},
    ]
    assert report["by_source"] == [
        {"key": "templates@1", "before": 5, "after": 2, "kept_share": 0.4},
        {"key": "self_instruct@1", "before": 2, "after": 1, "kept_share": 0.5},
    ]


def test_lengths_before_and_after_share_bin_edges():
    # Responses of 1, 3, 5, 7 and 9 characters and of 1 to 5 words; which of them a
    # filter keeps does not matter to the lengths, so the kept ones are picked by hand.
    responses = [" ".join(["w"] * words) for words in range(1, 6)]
    answers = examples_to_frame(_answer(f"p{i}", text) for i, text in enumerate(responses))
    kept = answers[[1, 4]]
    rejects = answers[[0, 2, 3]].with_columns(reason=pl.lit("unparseable"), detail=pl.lit("unparseable: x"))

    report = curation_report(answers, kept, rejects, TASK, tokenize=str.split)

    assert report["lengths"]["chars"] == {
        "edges": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        "before": {"min": 1, "p10": 1.8, "median": 5.0, "p90": 8.2, "max": 9, "mean": 5.0,
                   "counts": [1, 0, 1, 0, 1, 0, 1, 0, 1]},
        "after": {"min": 3, "p10": 3.6, "median": 6.0, "p90": 8.4, "max": 9, "mean": 6.0,
                  "counts": [0, 0, 1, 0, 0, 0, 0, 0, 1]},
    }
    assert report["lengths"]["tokens"]["edges"] == [1, 2, 3, 4, 5, 6]
    assert report["lengths"]["tokens"]["after"]["counts"] == [0, 1, 0, 0, 1]
    assert report["lengths"]["tokens"]["after"]["median"] == 3.5


def test_label_fields_are_read_from_any_schema():
    class Colour(enum.Enum):
        RED = "red"
        BLUE = "blue"

    class Answer(BaseModel):
        size: Literal["s", "m"] | None
        colour: Colour
        urgent: bool
        only: Literal["x"]
        note: str
        count: int

    assert label_fields(Answer) == {
        "size": ["s", "m", None], "colour": ["red", "blue"], "urgent": [True, False], "only": ["x"],
    }


def test_markdown_has_the_per_filter_rows():
    markdown = curation_markdown(curation_report(*_triage_run(), TASK))

    assert "| truncated | 2 | 28.6% |" in markdown
    assert "| wrong_fields | 1 | 14.3% |" in markdown
    assert "| kept | 3 | 42.9% |" in markdown
    assert "| t_cancel | 1 | 0 | 0.0% |" in markdown


def test_html_is_one_escaped_page_with_a_plot_per_chart():
    report = curation_report(*_triage_run(), TASK)
    pairs = {"pairs": 12, "dropped": {"tie": 3}, "chosen_longer_fraction": 0.75, "max_chosen_longer_fraction": 0.6,
             "by_strategy": {"verifier_ranked": 10, "corrupted": 2}, "by_axis": {"category": 7, "priority": 5},
             "margins": [0.5, 1.0, 1.0, 2.0], "label_balance": {"category": {"<b>x</b>": 4}}}

    page = curation_html(report, pairs)

    for title in ("Summary", "Rejections by filter", "Answer length", "Label balance", "Template survival",
                  "Preference pairs"):
        assert f"<h2>{title}</h2>" in page
    # rejections, chars histogram, category, priority, needs_human; strategy, axis, margins
    assert page.count(PLOT) == 8
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "chosen is the longer answer in 75.0% of pairs (limit 60.0%): over the limit" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    # Self-contained: every image is inline, and there is nothing else to fetch.
    assert page.count('src="') == page.count(PLOT) and "<link" not in page


def test_html_tolerates_a_partial_pair_report_and_no_rejects():
    answers = examples_to_frame([_answer("p", TASK.render_answer(_label("cancellation", "low", False)))])
    report = curation_report(answers, answers, answers.clear().with_columns(reason=pl.lit(""), detail=pl.lit("")), TASK)

    page = curation_html(report, {"pairs": 0})

    assert "No answer was rejected." in page
    assert "<h2>Preference pairs</h2>" in page
    assert page.count(PLOT) == 4

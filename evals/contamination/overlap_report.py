"""The audit's two files: `overlap.json` for machines and `overlap.html` for the auditor.

`overlap.json`: the settings, a summary, one entry per gold row (in gold file order) with
its closest training rows, every score and the shared spans as character offsets and text,
every flagged training row with the gold rows it matches (the rows to remove), and the
training rows that could not be read.

`overlap.html`: one self-contained page (`datagen/foundation/report_html.py`): the summary, a
histogram of each score's best value per gold row with its threshold, a table of the gold
rows by risk (already sorted, so it reads without JavaScript; a click on a heading sorts
by that column), and side by side, for every flagged gold row and the closest unflagged
ones, the gold text and its flagged matches (or its closest) with the shared spans marked.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from datagen.foundation.report_html import figure, html_table, page, paragraph, plot
from datagen.generation.imports import ImportReject
from evals.contamination.audit import AuditResult, GoldAudit, Match
from evals.contamination.ngram_overlap import SharedSpan

DETAIL_UNFLAGGED = 20  # closest clean gold rows shown side by side, to show the margin
EXCERPT_CHARS = 2000  # a longer text is shown around its longest shared span
HISTOGRAM_BINS = 20

_STYLE = """<style>
mark { background: #ffd54f; } .pair { display: grid; grid-template-columns: 1fr 1fr; gap: 0.8em; }
.pair pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #fafafa; padding: 0.5em;
  border: 1px solid #ddd; margin: 0.2em 0; font-size: 0.85em; }
th[data-sort] { cursor: pointer; } .flagged { background: #fde8e8; }
</style>"""

# Sorts the risk table by the clicked column; the page is complete without it.
_SORT_SCRIPT = """<script>
document.querySelectorAll("#risk-table th[data-sort]").forEach(function (th, column) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0], down = th.dataset.down !== "1";
    th.dataset.down = down ? "1" : "0";
    Array.from(body.rows).sort(function (a, b) {
      var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
      var nx = parseFloat(x), ny = parseFloat(y);
      var order = isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
      return down ? -order : order;
    }).forEach(function (row) { body.appendChild(row); });
  });
});
</script>"""


def _span_json(span: SharedSpan, gold: GoldAudit) -> dict[str, Any]:
    text = getattr(gold.gold, span.gold_field)
    return {"gold_field": span.gold_field, "train_field": span.train_field, "words": span.words,
            "gold_chars": list(span.gold_chars), "train_chars": list(span.train_chars),
            "text": text[span.gold_chars[0] : span.gold_chars[1]]}


def _match_json(match: Match, gold: GoldAudit) -> dict[str, Any]:
    return {
        "train_id": match.train.id, "where": match.train.where, "prompt": match.train.prompt,
        "answer": match.train.answer, "flagged_by": list(match.flagged_by), "risk": round(match.risk, 4),
        "exact": match.exact, "prompt_span": match.prompt_span, "answer_span": match.answer_span,
        "jaccard": None if match.jaccard is None else round(match.jaccard, 4),
        "cosine": None if match.cosine is None else round(match.cosine, 4),
        "spans": [_span_json(span, gold) for span in match.spans],
    }


def summary(result: AuditResult, unread: list[ImportReject]) -> dict[str, Any]:
    by_method = {method: sum(method in row.flagged_by for row in result.gold) for method in result.config.methods}
    return {
        "gold_rows": len(result.gold), "flagged_gold_rows": len(result.flagged), "flagged_by_method": by_method,
        "train_rows": result.train_rows, "train_bytes": result.train_bytes,
        "flagged_train_rows": len(result.flagged_train), "unread_train_rows": len(unread),
        "seconds": round(result.seconds, 3),
    }


def overlap_json(result: AuditResult, gold: str, train: list[str], unread: list[ImportReject]) -> dict[str, Any]:
    return {
        "gold": gold, "train": train, "config": result.config.model_dump(mode="json"),
        "summary": summary(result, unread),
        "gold_rows": [
            {"id": row.gold.id, "where": row.gold.where, "prompt": row.gold.prompt, "answer": row.gold.answer,
             "flagged_by": list(row.flagged_by), "risk": round(row.risk, 4),
             "matches": [_match_json(match, row) for match in row.matches]}
            for row in result.gold
        ],
        "flagged_train_rows": [{"where": where, "gold_ids": ids} for where, ids in result.flagged_train.items()],
        "unread_train_rows": [{"line": r.line, "reason": r.reason, "raw": r.raw} for r in unread],
    }


def _marked(text: str, intervals: list[tuple[int, int]]) -> str:
    """The text, escaped, with the intervals in <mark>; cut around the longest when long."""
    intervals = sorted(intervals)
    start, end = 0, len(text)
    if len(text) > EXCERPT_CHARS:
        longest = max(intervals, key=lambda i: i[1] - i[0], default=(0, 0))
        start = max(0, min(longest[0], len(text) - EXCERPT_CHARS) - EXCERPT_CHARS // 4)
        end = min(len(text), start + EXCERPT_CHARS)
    pieces, at = ["…" if start else ""], start
    for left, right in intervals:
        left, right = max(left, at), min(right, end)
        if left >= right:
            continue
        pieces.append(html.escape(text[at:left]) + "<mark>" + html.escape(text[left:right]) + "</mark>")
        at = right
    pieces.append(html.escape(text[at:end]) + ("…" if end < len(text) else ""))
    return "".join(pieces)


def _score_cells(match: Match | None) -> list[tuple[str, str]]:
    """(shown, sort value) of a match's scores, "" where there is no match or the method is off."""
    def cell(value, shown):
        return ("", "-1") if value is None else (shown, str(float(value)))

    if match is None:
        return [("", "-1")] * 5
    return [cell(match.exact, "yes" if match.exact else "no"), cell(match.prompt_span, str(match.prompt_span)),
            cell(match.answer_span, str(match.answer_span)),
            cell(match.jaccard, f"{match.jaccard or 0:.2f}"), cell(match.cosine, f"{match.cosine or 0:.3f}")]


def _risk_table(rows: list[GoldAudit], detailed: set[int]) -> str:
    header = ["risk", "gold row", "flagged by", "closest training row", "exact", "prompt span",
              "answer span", "jaccard", "cosine"]
    head = "".join(f'<th data-sort="{i}">{html.escape(name)}</th>' for i, name in enumerate(header))
    body = []
    for index, row in enumerate(rows):
        best = row.matches[0] if row.matches else None
        cells = [(f"{row.risk:.2f}", str(row.risk)),
                 (f'<a href="#gold-{index}">{html.escape(row.gold.id)}</a>' if index in detailed
                  else html.escape(row.gold.id), row.gold.id),
                 (html.escape(", ".join(row.flagged_by)), ", ".join(row.flagged_by)),
                 (html.escape(best.train.where) if best else "", best.train.where if best else "")]
        cells += [(html.escape(shown), value) for shown, value in _score_cells(best)]
        css = ' class="flagged"' if row.flagged_by else ""
        body.append(f"<tr{css}>" + "".join(
            f'<td data-value="{html.escape(value)}">{shown}</td>' for shown, value in cells) + "</tr>")
    return f'<table id="risk-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _side_by_side(index: int, row: GoldAudit) -> str:
    parts = [f'<h3 id="gold-{index}">{html.escape(row.gold.id)} ({html.escape(row.gold.where)}), '
             f"risk {row.risk:.2f}, flagged by {html.escape(', '.join(row.flagged_by) or 'nothing')}</h3>"]
    # The flagged matches; for a clean row, its closest one. overlap.json lists all top_k.
    shown = [match for match in row.matches if match.flagged_by] or list(row.matches[:1])
    for match in shown:
        scores = ", ".join(f"{name} {shown}" for name, (shown, _) in zip(
            ("exact", "prompt span", "answer span", "jaccard", "cosine"), _score_cells(match)) if shown)
        named = match.train.where + ("" if match.train.id == match.train.where else f" (id {match.train.id})")
        parts.append(paragraph(f"{named}: risk {match.risk:.2f}; {scores}; "
                               f"flagged by {', '.join(match.flagged_by) or 'nothing'}"))
        cells = []
        for field in ("prompt", "answer"):
            gold_marks = [s.gold_chars for s in match.spans if s.gold_field == field]
            train_marks = [s.train_chars for s in match.spans if s.train_field == field]
            cells.append(f"<div><b>gold {field}</b><pre>{_marked(getattr(row.gold, field), gold_marks)}</pre></div>")
            cells.append(f"<div><b>training {field}</b>"
                         f"<pre>{_marked(getattr(match.train, field), train_marks)}</pre></div>")
        parts.append(f'<div class="pair">{"".join(cells)}</div>')
    return "".join(parts)


def _best(row: GoldAudit, score: str) -> float:
    return max([getattr(match, score) or 0 for match in row.matches] + [0])


def _histograms(result: AuditResult) -> str:
    config = result.config
    spans = [max(_best(row, "prompt_span"), _best(row, "answer_span")) for row in result.gold]
    scores = [  # (method, name, best value per gold row, threshold, highest edge)
        ("ngram", "longest shared run (words)", spans, config.flag_ngram, max(spans + [config.flag_ngram]) + 1),
        ("minhash", "MinHash Jaccard", [_best(r, "jaccard") for r in result.gold], config.minhash.threshold, 1.0),
        ("embedding", "embedding cosine", [_best(r, "cosine") for r in result.gold], config.cosine_threshold, 1.0),
    ]
    images = []
    for method, name, values, threshold, high in scores:
        if method not in config.methods:
            continue
        fig = figure()
        axes = fig.subplots()
        axes.hist(values, bins=HISTOGRAM_BINS, range=(0.0, high))
        axes.axvline(threshold, color="#a00", linestyle="--", label=f"threshold {threshold:g}")
        axes.set_title(f"{name}: best per gold row")
        axes.set_xlabel(name)
        axes.set_ylabel("gold rows")
        axes.legend()
        images.append(plot(fig, f"histogram of the best {name} per gold row"))
    return "".join(images)


def overlap_html(result: AuditResult, gold: str, train: list[str], unread: list[ImportReject]) -> str:
    facts = summary(result, unread)
    verdict = (f"{facts['flagged_gold_rows']} of {facts['gold_rows']} gold rows are in the training data"
               if result.flagged else f"none of the {facts['gold_rows']} gold rows was found in the training data")
    lines = [paragraph(verdict, "warn" if result.flagged else None),
             paragraph(f"gold set: {gold}; training data: {', '.join(train)} ({facts['train_rows']} rows, "
                       f"{facts['train_bytes'] / 1e6:.2f} MB, audited in {facts['seconds']:.1f} s)"),
             html_table([[m, n] for m, n in facts["flagged_by_method"].items()], ["method", "gold rows flagged"])]
    if unread:
        lines.append(paragraph(f"{len(unread)} training rows could not be read and were not audited; "
                               f"first: line {unread[0].line}: {unread[0].reason}", "warn"))
    rows = sorted(result.gold, key=lambda row: -row.risk)
    flagged = len(result.flagged)
    # Flagged rows come first (risk >= 1); then the closest clean ones, to show the margin.
    detailed = [rank for rank, row in enumerate(rows) if row.matches and rank < flagged + DETAIL_UNFLAGGED]
    details = "".join(_side_by_side(rank, rows[rank]) for rank in detailed)
    return page("Contamination audit", [
        ("Summary", _STYLE + "".join(lines)),
        ("Scores", _histograms(result)),
        ("Gold rows by risk", paragraph("risk: the largest score divided by its threshold; 1 or more is "
                                        "flagged") + _risk_table(rows, set(detailed)) + _SORT_SCRIPT),
        (f"Side by side: {flagged} flagged, {len(detailed) - flagged} closest clean",
         details or paragraph("no gold row has a close training row")),
    ])


def write_overlap_report(folder: Path, result: AuditResult, gold: str, train: list[str],
                         unread: list[ImportReject]) -> tuple[Path, Path]:
    """Write `overlap.json` and `overlap.html` atomically (temp name, then rename)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (
        ("overlap.json", json.dumps(overlap_json(result, gold, train, unread), ensure_ascii=False, indent=1)),
        ("overlap.html", overlap_html(result, gold, train, unread)),
    ):
        temporary = folder / f".{name}.tmp"
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, folder / name)
        written.append(folder / name)
    return written[0], written[1]

"""Building blocks for crucible's self-contained HTML reports.

A report is one file that a reviewer can open from a run folder, attach to a ticket or
mail on: no external stylesheets, scripts or images. Plots are PNGs drawn by
matplotlib's Agg renderer and embedded as base64 data URIs. Every piece of text that
reaches the page passes through `html.escape` here, so a prompt holding `<script>`
shows as text; only `page` bodies are trusted, and those are built from these helpers.

The curation report uses them; pair, eval and audit reports are meant to reuse them.
"""

from __future__ import annotations

import base64
import html
import io
import re
from typing import Iterable, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td { max-width: 30em; overflow-wrap: anywhere; white-space: pre-wrap; }
img { max-width: 100%; display: block; margin: 0.8em 0; }
.warn { color: #a00; font-weight: bold; }
"""

# A cell reads as a number (and is right-aligned) when its text is one: "12", "3.5", "40.0%".
_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+%?$")


def cell_text(value: object) -> str:
    """A value as a table shows it: floats to two decimals without trailing zeros."""
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return "" if value is None else str(value)


def html_table(rows: Iterable[Sequence[object]], header: Sequence[str]) -> str:
    def cell(tag: str, value: object) -> str:
        text = cell_text(value)
        numeric = tag == "td" and _NUMBER.match(text) is not None
        attribute = ' class="num"' if numeric else ""
        return f"<{tag}{attribute}>{html.escape(text)}</{tag}>"

    head = "<tr>" + "".join(cell("th", name) for name in header) + "</tr>"
    body = "".join("<tr>" + "".join(cell("td", value) for value in row) + "</tr>" for row in rows)
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def paragraph(text: str, css_class: str | None = None) -> str:
    attribute = f' class="{css_class}"' if css_class else ""
    return f"<p{attribute}>{html.escape(text)}</p>"


def figure(rows: int = 1, height: float = 3.0) -> Figure:
    # A bare Figure, not pyplot: no global registry of open figures to leak into or to
    # close, and safe from a Prefect worker thread (matplotlib's advice for web servers).
    return Figure(figsize=(7.0, height * rows), layout="constrained")


def png_data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def plot(fig: Figure, alt: str) -> str:
    return f'<img src="{png_data_uri(fig)}" alt="{html.escape(alt)}">'


def bar_figure(categories: Sequence[str], series: dict[str, Sequence[float]], title: str) -> Figure:
    """Horizontal bars, one group per category and one bar per series (e.g. before/after).

    Horizontal, because category names (filter kinds, labels, templates) are long words.
    """
    fig = figure(height=1.0 + 0.2 * len(categories) * len(series))
    axes = fig.subplots()
    thickness = 0.8 / len(series)
    for index, (name, values) in enumerate(series.items()):
        axes.barh([k + index * thickness for k in range(len(categories))], values, height=thickness, label=name)
    axes.set_yticks([k + thickness * (len(series) - 1) / 2 for k in range(len(categories))], categories)
    axes.invert_yaxis()  # first category on top, in the order the tables list them
    axes.set_title(title)
    axes.set_xlabel("rows")
    if len(series) > 1:
        axes.legend()
    return fig


def histogram_figure(edges: Sequence[float], series: dict[str, Sequence[int]], title: str, xlabel: str) -> Figure:
    """Already-binned counts on shared edges, overlaid so that the shapes compare."""
    fig = figure()
    axes = fig.subplots()
    for name, counts in series.items():
        axes.stairs(counts, edges, fill=True, alpha=0.45, label=name)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("rows")
    if len(series) > 1:
        axes.legend()
    return fig


def page(title: str, sections: Iterable[tuple[str, str]]) -> str:
    """A whole HTML document: each section is (heading, body HTML built by these helpers)."""
    body = "".join(f"<section><h2>{html.escape(heading)}</h2>{content}</section>" for heading, content in sections)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )

"""Text-to-SQL: answer a question about the shop database with one SQLite query.

Input: a question in English. Output: `{"sql": "<one SELECT statement>"}`. The database
(`text_to_sql_shop.py`) is fixed and its schema is in the system prompt. The generator
renders the question templates of `text_to_sql_questions.py` with
`datagen.generation.template_generator`; each question family has one reference query rendered from
the same slot values, which is the label.

An answer is checked by running it, not by reading it: `compare_answer` runs the answer
and the reference on fresh copies of the shop and calls `sql` wrong when the rows differ
or the answer does not run. This is execution accuracy (Spider, Yu et al. 2018; with the
column-order leniency of Zhong et al. 2020's test-suite evaluation): two different
queries that return the same rows are both right.
"""

from __future__ import annotations

import functools
import itertools
import re
import sqlite3
from dataclasses import dataclass
from typing import Sequence

from pydantic import BaseModel, ConfigDict, Field

from datagen.foundation.task import Task
from datagen.generation.template_generator import generate_from_templates, render
from datagen.tasks.text_to_sql_mistakes import plausible_wrong_queries
from datagen.tasks.text_to_sql_questions import QUESTION_TEMPLATES, REFERENCE_TEMPLATES, slot_vocabulary
from datagen.tasks.text_to_sql_shop import SCHEMA_SQL, open_shop

# Guards for running a model's query. A budget of VM instructions rather than seconds,
# so that the verdict on an answer does not depend on how busy the machine is. Reference
# queries need at most about 1,200 instructions on the shop (a test keeps them under 1%
# of the budget); a recursive CTE with no end or a four-way cross join hits the budget
# in about 0.1 s here.
PROGRESS_STEP = 10_000  # instructions between two calls of the progress handler
MAX_PROGRESS_CALLS = 500  # 5M instructions
MAX_ROWS = 1_000  # the shop's largest table has under 200 rows
MAX_VALUE_BYTES = 100_000  # refuses randomblob(1e9) before it allocates
READ_ONLY_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
# Numbers in the two results may differ by half a cent (plus float noise): prices and
# revenues are money, and an answer that rounds an average to cents is right whichever
# way it rounds a half cent.
NUMBER_TOLERANCE = 0.005 + 1e-9


class SqlAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(min_length=1)


SYSTEM_PROMPT = f"""\
You write SQLite queries for a shop database. Reply with exactly one JSON object and \
nothing else: {{"sql": "<one SELECT statement>"}}.

The database:
{SCHEMA_SQL}

Dates are text like '2024-03-09'. orders.status is 'shipped', 'pending' or 'cancelled'. \
Prices are in dollars. Select only the columns the question asks for, and sort only when \
it asks for an order. Your query is checked by running it: its rows must equal the right \
rows, with numbers allowed to differ by at most 0.005."""

FEW_SHOT = (
    ("What is the most expensive product?",
     {"sql": "SELECT name FROM products ORDER BY price DESC LIMIT 1"}),
    ("How many customers joined in 2023?",
     {"sql": "SELECT COUNT(*) FROM customers WHERE joined_on LIKE '2023-%'"}),
    ("Which cities do our customers live in? List each city once.",
     {"sql": "SELECT DISTINCT city FROM customers"}),
)


@dataclass(frozen=True)
class GeneratedQuestion:
    text: str  # the question
    label: dict  # {"sql": reference query}
    template_id: str  # "<family>/<phrasing number>"


def generate_questions(count: int, seed: int) -> list[GeneratedQuestion]:
    """`count` questions with reference SQL, phrasings dealt evenly; the same (count,
    seed) always gives the same list."""
    vocabulary = slot_vocabulary()
    questions = []
    for question in generate_from_templates(QUESTION_TEMPLATES, vocabulary, count, seed):
        family = question.template_id.split("/")[0]
        sql = render(REFERENCE_TEMPLATES[family], question.slots)
        questions.append(GeneratedQuestion(question.text, {"sql": sql}, question.template_id))
    return questions


class QueryRefused(Exception):
    """The query ran but broke a guard (too many rows)."""


def _read_only(action: int, *_names) -> int:
    return sqlite3.SQLITE_OK if action in READ_ONLY_ACTIONS else sqlite3.SQLITE_DENY


def run_query(sql: str) -> list[tuple]:
    """The rows of one read-only statement on a fresh copy of the shop.

    Raises sqlite3.Error when it does not compile, is not a single read-only statement,
    runs past the instruction budget ("interrupted") or makes a value over
    MAX_VALUE_BYTES; QueryRefused when it returns more than MAX_ROWS rows.
    """
    connection = open_shop()
    try:
        connection.set_authorizer(_read_only)
        connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        calls = itertools.count(1)
        connection.set_progress_handler(lambda: next(calls) > MAX_PROGRESS_CALLS, PROGRESS_STEP)
        rows = connection.execute(sql).fetchmany(MAX_ROWS + 1)
    finally:
        connection.close()
    if len(rows) > MAX_ROWS:
        raise QueryRefused(f"more than {MAX_ROWS} rows")
    return rows


@functools.lru_cache(maxsize=1024)
def _reference_rows(sql: str) -> tuple[tuple, ...]:
    # Cached: every teacher sample for a prompt is compared with the same reference.
    # A reference that fails is a bug in the question templates: let it raise.
    return tuple(run_query(sql))


def _cell_key(value: object) -> tuple:
    # SQLite's order of storage classes: NULL, numbers, text, blobs.
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)):
        return (1, round(value, 2))
    return (2, value) if isinstance(value, str) else (3, value)


def _row_key(row: tuple) -> tuple:
    return tuple(_cell_key(value) for value in row)


def _same_cell(said: object, truth: object) -> bool:
    numbers = all(isinstance(v, (int, float)) for v in (said, truth))
    if numbers and float in (type(said), type(truth)):
        return abs(said - truth) <= NUMBER_TOLERANCE
    return said == truth


def same_rows(said: Sequence[tuple], truth: Sequence[tuple], ordered: bool) -> bool:
    """Equal as multisets of rows (as lists when `ordered`), numbers within
    NUMBER_TOLERANCE, allowing the answer's columns in any order: "name and price"
    answered as price, name is still right."""
    if len(said) != len(truth):
        return False
    if not truth:
        return True
    width = len(truth[0])
    if len(said[0]) != width:
        return False
    if not ordered:
        truth = sorted(truth, key=_row_key)
    for columns in itertools.permutations(range(width)):
        permuted = [tuple(row[i] for i in columns) for row in said]
        if not ordered:
            permuted.sort(key=_row_key)
        if all(
            _same_cell(a, b) for row, true_row in zip(permuted, truth) for a, b in zip(row, true_row)
        ):
            return True
    return False


def compare_answer(answer: dict, reference: dict) -> list[str]:
    """`["sql"]` when the answer's rows differ from the reference's or it does not run.

    Rows are compared in order only when the reference sorts (has ORDER BY), which it
    does exactly when the question asks for an order. Why an answer failed (a syntax
    error, a write refused, the budget) is not reported: the Task contract returns field
    names only.
    """
    truth = _reference_rows(reference["sql"])
    try:
        said = run_query(answer["sql"])
    except (sqlite3.Error, QueryRefused):
        return ["sql"]
    ordered = re.search(r"\bORDER\s+BY\b", reference["sql"], re.IGNORECASE) is not None
    return [] if same_rows(said, truth, ordered) else ["sql"]


TASK = Task(
    name="text_to_sql",
    version="1",
    answer_schema=SqlAnswer,
    system_prompt=SYSTEM_PROMPT,
    few_shot=FEW_SHOT,
    generate=generate_questions,
    compare=compare_answer,
    plausible_wrong_values=plausible_wrong_queries,
    # Generated answers are 61-251 characters rendered (median 86, 2,000 questions, seed 1).
    max_answer_chars=500,
)

from collections import Counter

import pytest

from datagen.foundation.task import schema_errors
from datagen.tasks.text_to_sql import (
    MAX_PROGRESS_CALLS,
    PROGRESS_STEP,
    TASK,
    GeneratedQuestion,
    SqlAnswer,
    compare_answer,
    generate_questions,
    run_query,
    same_rows,
)
from datagen.tasks.text_to_sql_questions import QUESTION_TEMPLATES, QUESTIONS
from datagen.tasks.text_to_sql_shop import CITIES, NEVER_ORDERING, open_shop, shop_rows

AUSTIN = {"sql": "SELECT COUNT(*) FROM customers WHERE city = 'Austin'"}
UNDER_100 = {"sql": "SELECT name, price FROM products WHERE price < 100 ORDER BY price DESC"}
AVERAGES = {"sql": "SELECT category, AVG(price) FROM products GROUP BY category"}
NEVER = {"sql": "SELECT name FROM customers WHERE id NOT IN (SELECT customer_id FROM orders)"}


@pytest.fixture(scope="module")
def questions():
    return generate_questions(240, seed=0)


def test_a_fixed_seed_gives_these_questions():
    assert generate_questions(4, seed=0) == [
        GeneratedQuestion("Which customers have never placed an order?", NEVER, "never_ordered/1"),
        GeneratedQuestion("How many customers are based in Austin?", AUSTIN, "customers_in_city/1"),
        GeneratedQuestion("What is the number of cancelled orders?",
                          {"sql": "SELECT COUNT(*) FROM orders WHERE status = 'cancelled'"},
                          "orders_with_status/2"),
        GeneratedQuestion("Show every product priced under $100 with its price, from the highest "
                          "price to the lowest.", UNDER_100, "products_under_price/2"),
    ]


def test_same_seed_same_questions_other_seed_other_questions():
    assert generate_questions(30, seed=3) == generate_questions(30, seed=3)
    assert [q.text for q in generate_questions(30, seed=3)] != [q.text for q in generate_questions(30, seed=4)]


def test_the_shop_is_the_same_in_every_build():
    rows = shop_rows()
    assert {table: len(r) for table, r in rows.items()} == {
        "customers": 14, "products": 15, "orders": 60, "order_items": 117,
    }
    assert rows["customers"][0] == (1, "Ada Moreno", "Austin", "2023-03-02")
    assert rows["products"][0] == (1, "chef knife", "kitchen", 189.52)
    assert rows["orders"][0] == (1, 1, "2024-08-06", "cancelled")
    assert len({p[3] for p in rows["products"]}) == 15  # no ties when sorting by price
    assert run_query(NEVER["sql"]) == [("Lena Vogel",), ("Marco Rossi",), ("Nina Alvarez",)]
    assert NEVER_ORDERING == 3
    ordering_cities = run_query("SELECT DISTINCT city FROM customers JOIN orders ON customer_id = customers.id")
    assert sorted(c for (c,) in ordering_cities) == sorted(CITIES)


def test_every_phrasing_is_used_evenly(questions):
    assert Counter(q.template_id for q in questions) == {t.template_id: 10 for t in QUESTION_TEMPLATES}
    assert len(QUESTION_TEMPLATES) == 2 * len(QUESTIONS)


def instructions(sql: str) -> int:
    """SQLite VM instructions the query takes: the handler runs after every one and,
    returning None, lets the query go on."""
    calls = []
    connection = open_shop()
    connection.set_progress_handler(lambda: calls.append(1), 1)
    connection.execute(sql).fetchall()
    return len(calls)


def test_every_reference_runs_cheaply_and_has_a_non_empty_answer(questions):
    budget = PROGRESS_STEP * MAX_PROGRESS_CALLS
    for sql in sorted({q.label["sql"] for q in questions}):
        rows = run_query(sql)
        assert rows and any(value not in (None, 0) for row in rows for value in row), sql
        assert instructions(sql) < budget / 100, sql
        assert compare_answer({"sql": sql}, {"sql": sql}) == []


def test_few_shot_answers_fit_the_schema_and_run():
    assert len(TASK.few_shot) == 3
    for _, answer in TASK.few_shot:
        assert schema_errors(SqlAnswer, answer) == []
        assert run_query(answer["sql"])
    assert "JSON object and nothing else" in TASK.system_prompt
    assert "CREATE TABLE order_items" in TASK.system_prompt


def test_a_different_query_with_the_same_rows_is_right():
    assert compare_answer({"sql": "select count(id) from customers where city like 'austin'"}, AUSTIN) == []
    # columns in another order, and averages rounded to cents either way
    assert compare_answer({"sql": "SELECT ROUND(AVG(price), 2), category FROM products GROUP BY 2"}, AVERAGES) == []
    # order does not count when the question asks for none
    assert compare_answer({"sql": NEVER["sql"] + " ORDER BY name DESC"}, NEVER) == []


def test_wrong_rows_are_wrong():
    assert compare_answer({"sql": "SELECT COUNT(*) FROM customers"}, AUSTIN) == ["sql"]
    # the question asks for most expensive first
    assert compare_answer({"sql": UNDER_100["sql"].replace("DESC", "ASC")}, UNDER_100) == ["sql"]
    # an extra column, or a missing one
    assert compare_answer({"sql": "SELECT name, price, id FROM products WHERE price < 100 ORDER BY price DESC"},
                          UNDER_100) == ["sql"]
    assert compare_answer({"sql": "SELECT name FROM products WHERE price < 100 ORDER BY price DESC"},
                          UNDER_100) == ["sql"]
    # names repeated once per order, where the question asks which customers
    buyers = {"sql": "SELECT DISTINCT customers.name FROM customers JOIN orders ON orders.customer_id = customers.id"}
    assert compare_answer({"sql": buyers["sql"].replace("DISTINCT ", "")}, buyers) == ["sql"]


@pytest.mark.parametrize("sql", [
    "SELEC COUNT(*) FROM customers",
    "SELECT COUNT(*) FROM clients",
    "DELETE FROM customers WHERE city != 'Austin'",
    "SELECT 4; SELECT 4",
    "ATTACH DATABASE 'stolen.db' AS stolen",
    "PRAGMA table_info(customers)",
    "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT COUNT(*) FROM r",
    "SELECT length(randomblob(1000000000))",
    "SELECT a.order_id FROM order_items a, order_items b",
    "SELECT 4\x00",
])
def test_a_query_that_fails_breaks_or_escapes_the_guards_is_wrong(sql):
    assert compare_answer({"sql": sql}, AUSTIN) == ["sql"]
    assert run_query(AUSTIN["sql"]) == [(4,)]  # and the shop is untouched


def test_same_rows_literal_cases():
    assert same_rows([(3,)], [(3.0,)], ordered=True)
    assert same_rows([("office", 172.24)], [("office", 172.235)], ordered=False)
    assert same_rows([("office", 172.23)], [("office", 172.235)], ordered=False)
    assert not same_rows([("office", 172.22)], [("office", 172.235)], ordered=False)
    assert same_rows([(2, "b"), (1, "a")], [("a", 1), ("b", 2)], ordered=False)
    assert not same_rows([(2, "b"), (1, "a")], [("a", 1), ("b", 2)], ordered=True)
    assert not same_rows([("3",)], [(3,)], ordered=False)
    assert not same_rows([(1,), (1,)], [(1,)], ordered=False)
    assert same_rows([], [], ordered=False)

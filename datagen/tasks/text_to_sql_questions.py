"""The questions `text_to_sql.py` asks about the shop, each with its reference query.

A question family has two or more phrasings (Jinja2 templates for
`datagen.generation.template_generator`, template ids "<family>/<number>") and one reference query
rendered from the same slot values. Slot values come from the shop's rows, so that every
question has an answer: customers who ordered, products that were ordered, months with
shipped orders. A reference sorts (ORDER BY) exactly when its question asks for an
order, which is how `compare_answer` knows whether row order counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from datagen.generation.template_generator import Template
from datagen.tasks.text_to_sql_shop import STATUSES, shop_rows


@dataclass(frozen=True)
class Question:
    family: str
    phrasings: tuple[str, ...]  # Jinja2; every phrasing names the same slots as `sql`
    sql: str  # Jinja2; ORDER BY only where the question asks for an order


QUESTIONS = (
    Question("customers_in_city", (
        "How many customers are based in {{ city }}?",
        "What is the number of customers located in {{ city }}?",
    ), "SELECT COUNT(*) FROM customers WHERE city = '{{ city }}'"),
    Question("products_in_category", (
        "List the names of all {{ category }} products.",
        "Which products belong to the {{ category }} category?",
    ), "SELECT name FROM products WHERE category = '{{ category }}'"),
    Question("cheapest_products", (
        "What are the {{ n }} cheapest products? Give each name and price, cheapest first.",
        "Show the name and price of the {{ n }} least expensive products, cheapest first.",
    ), "SELECT name, price FROM products ORDER BY price LIMIT {{ n }}"),
    Question("products_under_price", (
        "Which products cost less than {{ price }} dollars? List name and price, most "
        "expensive first.",
        "Show every product priced under ${{ price }} with its price, from the highest "
        "price to the lowest.",
    ), "SELECT name, price FROM products WHERE price < {{ price }} ORDER BY price DESC"),
    Question("orders_of_customer", (
        "How many orders has {{ customer }} placed?",
        "Count the orders placed by {{ customer }}.",
    ), "SELECT COUNT(*) FROM orders JOIN customers ON customers.id = orders.customer_id "
       "WHERE customers.name = '{{ customer }}'"),
    Question("units_of_product", (
        "How many units of the {{ product }} have been ordered in total?",
        "What is the total quantity ordered of the {{ product }}?",
    ), "SELECT SUM(order_items.quantity) FROM order_items JOIN products ON products.id = "
       "order_items.product_id WHERE products.name = '{{ product }}'"),
    Question("buyers_of_product", (
        "Which customers have ordered the {{ product }}? Give their names.",
        "List the names of the customers who ordered the {{ product }}.",
    ), "SELECT DISTINCT customers.name FROM customers JOIN orders ON orders.customer_id = "
       "customers.id JOIN order_items ON order_items.order_id = orders.id JOIN products ON "
       "products.id = order_items.product_id WHERE products.name = '{{ product }}'"),
    Question("never_ordered", (
        "Which customers have never placed an order?",
        "List the names of customers without any orders.",
    ), "SELECT name FROM customers WHERE id NOT IN (SELECT customer_id FROM orders)"),
    Question("orders_with_status", (
        "How many orders are {{ status }}?",
        "What is the number of {{ status }} orders?",
    ), "SELECT COUNT(*) FROM orders WHERE status = '{{ status }}'"),
    Question("monthly_revenue", (
        "What was the revenue from shipped orders placed in {{ month.name }} 2024?",
        "How much money did the shipped orders placed in {{ month.name }} 2024 bring in?",
    ), "SELECT SUM(order_items.quantity * products.price) FROM orders JOIN order_items ON "
       "order_items.order_id = orders.id JOIN products ON products.id = order_items.product_id "
       "WHERE orders.status = 'shipped' AND orders.ordered_on LIKE '{{ month.prefix }}-%'"),
    Question("orders_per_city", (
        "For each city, how many orders have its customers placed?",
        "Count the orders per customer city.",
    ), "SELECT customers.city, COUNT(*) FROM orders JOIN customers ON customers.id = "
       "orders.customer_id GROUP BY customers.city"),
    Question("average_price_per_category", (
        "What is the average product price in each category?",
        "For every category, give the average price of its products.",
    ), "SELECT category, AVG(price) FROM products GROUP BY category"),
)
QUESTION_TEMPLATES = tuple(
    Template(f"{q.family}/{number}", phrasing)
    for q in QUESTIONS
    for number, phrasing in enumerate(q.phrasings, start=1)
)
REFERENCE_TEMPLATES = {q.family: Template(f"{q.family}/sql", q.sql) for q in QUESTIONS}


@dataclass(frozen=True)
class Month:
    name: str  # "March", as a question says it
    prefix: str  # "2024-03", as orders.ordered_on starts


def slot_vocabulary() -> dict:
    """Slot values drawn from the shop itself, so that every question has an answer:
    customers who ordered, products that were ordered, months with shipped orders."""
    rows = shop_rows()
    ordered_products = {item[1] for item in rows["order_items"]}
    buyers = {order[1] for order in rows["orders"]}
    shipped_months = sorted({o[2][:7] for o in rows["orders"] if o[3] == "shipped"})
    month_names = ("January", "February", "March", "April", "May", "June", "July",
                   "August", "September", "October", "November", "December")
    return {
        "city": sorted({c[2] for c in rows["customers"]}),
        "category": sorted({p[2] for p in rows["products"]}),
        "customer": [c[1] for c in rows["customers"] if c[0] in buyers],
        "product": [p[1] for p in rows["products"] if p[0] in ordered_products],
        "status": STATUSES,
        "month": [Month(month_names[int(m[5:]) - 1], m) for m in shipped_months],
        "n": (2, 3, 5),
        "price": (25, 50, 100, 150),
    }

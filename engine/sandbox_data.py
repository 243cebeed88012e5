"""The sandbox's sample database: a small shop (customers, products, orders and their lines, an order
audit trail), its initial ~50,000 rows, and the steady trickle of writes an application would make.

Related tables with foreign keys, a view, a stored function and a trigger, and the types a DR task
must carry exactly: DECIMAL, DATETIME(6), JSON, utf8mb4 text (accents, CJK, emoji) and NULLs.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import pymysql

DATABASE = "sandbox_shop"
CUSTOMERS = 4_000
PRODUCTS = 600
ORDERS = 15_000  # 1 to 3 lines each: 30,000 order lines
SEED = 20_240_601
INSERT_BATCH = 1_000
STATUSES = ("new", "paid", "shipped", "delivered")

SCHEMA: tuple[str, ...] = (
    f"CREATE DATABASE `{DATABASE}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    """CREATE TABLE customers (
        id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        name VARCHAR(120) NOT NULL,
        email VARCHAR(190) NOT NULL,
        city VARCHAR(80) NULL,
        profile JSON NULL,
        created_at DATETIME(6) NOT NULL,
        UNIQUE KEY uq_customers_email (email)
    ) ENGINE=InnoDB""",
    """CREATE TABLE products (
        id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        sku VARCHAR(32) NOT NULL,
        title VARCHAR(200) NOT NULL,
        price DECIMAL(10,2) NOT NULL,
        stock INT NOT NULL,
        attributes JSON NULL,
        updated_at DATETIME(6) NOT NULL,
        UNIQUE KEY uq_products_sku (sku)
    ) ENGINE=InnoDB""",
    """CREATE TABLE orders (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        customer_id INT UNSIGNED NOT NULL,
        status VARCHAR(16) NOT NULL,
        ordered_at DATETIME(6) NOT NULL,
        total DECIMAL(12,2) NOT NULL,
        note TEXT NULL,
        KEY ix_orders_customer (customer_id),
        CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
    ) ENGINE=InnoDB""",
    """CREATE TABLE order_lines (
        order_id BIGINT UNSIGNED NOT NULL,
        line_no SMALLINT UNSIGNED NOT NULL,
        product_id INT UNSIGNED NOT NULL,
        quantity INT NOT NULL,
        unit_price DECIMAL(10,2) NOT NULL,
        PRIMARY KEY (order_id, line_no),
        KEY ix_order_lines_product (product_id),
        CONSTRAINT fk_order_lines_order FOREIGN KEY (order_id) REFERENCES orders (id),
        CONSTRAINT fk_order_lines_product FOREIGN KEY (product_id) REFERENCES products (id)
    ) ENGINE=InnoDB""",
    """CREATE TABLE order_events (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        order_id BIGINT UNSIGNED NOT NULL,
        old_status VARCHAR(16) NULL,
        new_status VARCHAR(16) NOT NULL,
        changed_at DATETIME(6) NOT NULL,
        KEY ix_order_events_order (order_id)
    ) ENGINE=InnoDB""",
    # the audit trail an application relies on: on the DR side it is held back until a promote
    """CREATE TRIGGER orders_status_audit AFTER UPDATE ON orders FOR EACH ROW
        IF NOT (OLD.status <=> NEW.status) THEN
            INSERT INTO order_events (order_id, old_status, new_status, changed_at)
            VALUES (NEW.id, OLD.status, NEW.status, NOW(6));
        END IF""",
    """CREATE FUNCTION order_total(p_order BIGINT UNSIGNED) RETURNS DECIMAL(12,2) READS SQL DATA
        RETURN (SELECT COALESCE(SUM(quantity * unit_price), 0) FROM order_lines WHERE order_id = p_order)""",
    """CREATE VIEW customer_totals AS
        SELECT c.id AS customer_id, c.name, COUNT(o.id) AS orders, COALESCE(SUM(o.total), 0) AS spent
        FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.name""",
)

FIRST_NAMES = ("Anna", "José", "Zoë", "Łukasz", "Søren", "Ngọc", "Mehmet", "Aiko", "Ольга", "王芳", "Fatima", "Liam")  # fmt: skip
LAST_NAMES = ("Müller", "García", "Nowak", "Øyen", "Nguyễn", "Yılmaz", "Tanaka", "Иванова", "李", "O'Brien", "Smith")  # fmt: skip
CITIES = ("Lisboa", "Kraków", "Zürich", "Århus", "São Paulo", "東京", "Москва", "Reykjavík", "Dublin", "Hà Nội")  # fmt: skip
PRODUCT_WORDS = ("Mug ☕", "Lamp 🚀", "Notebook", "Chair", "Kettle", "Café crème", "Tee 🍵", "Backpack", "Clé USB")  # fmt: skip


def _names(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return f"{first} {last}", f"{first}.{last}".lower()


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low, high)) / 100


def _customers(rng: random.Random, start: datetime) -> Iterable[tuple]:
    for i in range(1, CUSTOMERS + 1):
        name, handle = _names(rng)
        city = None if i % 7 == 0 else rng.choice(CITIES)
        profile = None if i % 5 == 0 else json.dumps({"newsletter": i % 2 == 0, "tier": rng.choice(("basic", "gold")),
                                                     "tags": rng.sample(("b2b", "vip", "late", "eu"), 2)}, ensure_ascii=False)  # fmt: skip
        yield (
            i,
            name,
            f"{handle}.{i}@example.com",
            city,
            profile,
            start + timedelta(seconds=i * 97, microseconds=rng.randint(0, 999_999)),
        )


def _products(rng: random.Random, start: datetime) -> Iterable[tuple]:
    for i in range(1, PRODUCTS + 1):
        attributes = None if i % 4 == 0 else json.dumps({"colour": rng.choice(("red", "blue", "grün")), "weight_g": rng.randint(50, 5000)},
                                                        ensure_ascii=False)  # fmt: skip
        yield (i, f"SKU-{i:05d}", f"{rng.choice(PRODUCT_WORDS)} #{i}", _money(rng, 199, 99_999), rng.randint(0, 500),
               attributes, start + timedelta(minutes=i, microseconds=rng.randint(0, 999_999)))  # fmt: skip


def _orders_and_lines(
    rng: random.Random, start: datetime, prices: Sequence[Decimal]
) -> tuple[list[tuple], list[tuple]]:
    orders: list[tuple] = []
    lines: list[tuple] = []
    for i in range(1, ORDERS + 1):
        total = Decimal(0)
        for line_no in range(1, 2 + i % 3):
            product = rng.randint(1, PRODUCTS)
            quantity = rng.randint(1, 5)
            total += quantity * prices[product - 1]
            lines.append((i, line_no, product, quantity, prices[product - 1]))
        note = (
            None
            if i % 3
            else rng.choice(
                ("Leave at the door", "Geschenk 🎁 — bitte einpacken", "急ぎ", "Call first\nthen ring")
            )
        )
        orders.append((i, rng.randint(1, CUSTOMERS), rng.choice(STATUSES), start + timedelta(seconds=i * 53, microseconds=rng.randint(0, 999_999)),
                       total, note))  # fmt: skip
    return orders, lines


def _insert(cur: pymysql.cursors.Cursor, table: str, columns: str, rows: Sequence[tuple]) -> None:
    marks = ", ".join(["%s"] * len(rows[0]))
    for i in range(0, len(rows), INSERT_BATCH):
        cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows[i : i + INSERT_BATCH])


def load(conn: pymysql.connections.Connection) -> int:
    """(Re)create the sample database with its rows; the number of rows loaded. Deterministic."""
    rng = random.Random(SEED)
    start = datetime(2024, 1, 1, 8, 0, 0)
    customers = list(_customers(rng, start))
    products = list(_products(rng, start))
    orders, lines = _orders_and_lines(rng, start, [p[3] for p in products])
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        for statement in SCHEMA:
            cur.execute(statement)
            if statement.startswith("CREATE DATABASE"):
                cur.execute(f"USE `{DATABASE}`")
        conn.begin()
        _insert(cur, "customers", "id, name, email, city, profile, created_at", customers)
        _insert(cur, "products", "id, sku, title, price, stock, attributes, updated_at", products)
        _insert(cur, "orders", "id, customer_id, status, ordered_at, total, note", orders)
        _insert(cur, "order_lines", "order_id, line_no, product_id, quantity, unit_price", lines)
        conn.commit()
    return len(customers) + len(products) + len(orders) + len(lines)


# ---- the trickle ---------------------------------------------------------------------------------


def _some_id(cur: pymysql.cursors.Cursor, rng: random.Random, table: str) -> int | None:
    cur.execute(f"SELECT MIN(id), MAX(id) FROM {table}")
    low, high = cur.fetchone()
    if low is None:
        return None
    cur.execute(f"SELECT id FROM {table} WHERE id >= %s ORDER BY id LIMIT 1", (rng.randint(low, high),))
    row = cur.fetchone()
    return int(row[0]) if row else int(low)


def _new_order(cur: pymysql.cursors.Cursor, rng: random.Random) -> None:
    customer = _some_id(cur, rng, "customers")
    cur.execute("INSERT INTO orders (customer_id, status, ordered_at, total, note) VALUES (%s, 'new', NOW(6), 0, %s)",
                (customer, rng.choice((None, "Trickle order ✓", "Express — ASAP"))))  # fmt: skip
    order = cur.lastrowid
    for line_no in range(1, rng.randint(2, 4)):
        product = _some_id(cur, rng, "products")
        cur.execute("INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price) "
                    "SELECT %s, %s, id, %s, price FROM products WHERE id = %s", (order, line_no, rng.randint(1, 3), product))  # fmt: skip
    cur.execute("UPDATE orders SET total = order_total(id) WHERE id = %s", (order,))


def _advance_order(cur: pymysql.cursors.Cursor, rng: random.Random) -> None:
    order = _some_id(cur, rng, "orders")
    cur.execute(
        "UPDATE orders SET status = CASE status WHEN 'new' THEN 'paid' WHEN 'paid' THEN 'shipped' "
        "WHEN 'shipped' THEN 'delivered' ELSE 'new' END WHERE id = %s",
        (order,),
    )  # the trigger writes the audit row


def _reprice_product(cur: pymysql.cursors.Cursor, rng: random.Random) -> None:
    cur.execute("UPDATE products SET price = GREATEST(1.99, ROUND(price * %s, 2)), stock = GREATEST(0, stock - 1), "
                "updated_at = NOW(6) WHERE id = %s", (Decimal(rng.randint(90, 110)) / 100, _some_id(cur, rng, "products")))  # fmt: skip


def _touch_customer(cur: pymysql.cursors.Cursor, rng: random.Random) -> None:
    city = rng.choice((*CITIES, None))
    cur.execute("UPDATE customers SET city = %s, profile = JSON_SET(COALESCE(profile, '{}'), '$.visits', %s) WHERE id = %s",
                (city, rng.randint(1, 999), _some_id(cur, rng, "customers")))  # fmt: skip


def _delete_order(cur: pymysql.cursors.Cursor, rng: random.Random) -> None:
    order = _some_id(cur, rng, "orders")
    # children first: the foreign keys restrict (no cascade, which a row binlog would not carry)
    cur.execute("DELETE FROM order_lines WHERE order_id = %s", (order,))
    cur.execute("DELETE FROM order_events WHERE order_id = %s", (order,))
    cur.execute("DELETE FROM orders WHERE id = %s", (order,))


# (weight, write): inserts outnumber deletes, so the shop grows slowly
WRITES: tuple[tuple[int, Callable[[pymysql.cursors.Cursor, random.Random], None]], ...] = (
    (4, _new_order), (3, _advance_order), (1, _reprice_product), (1, _touch_customer), (1, _delete_order),
)  # fmt: skip


def write_once(conn: pymysql.connections.Connection, rng: random.Random) -> str:
    """One application transaction on the sample database; its name."""
    write = rng.choices([w for _, w in WRITES], weights=[n for n, _ in WRITES])[0]
    with conn.cursor() as cur:
        conn.begin()
        try:
            write(cur, rng)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return write.__name__.lstrip("_")


def run_trickle(
    connect: Callable[[], pymysql.connections.Connection],
    stop: threading.Event,
    *,
    server_gone: Callable[[], bool],
    log: Callable[[str], None],
    interval: float = 0.3,
    gone_after: float = 30.0,
) -> int:
    """Write a few transactions per second until `stop` is set (exit 0) or the service server has been
    gone for `gone_after` seconds (exit 1). Reconnects while the server restarts; a refused write (the
    server made read-only by a promote) is logged and retried later."""
    rng = random.Random()
    conn: pymysql.connections.Connection | None = None
    unreachable_since: float | None = None
    written = 0
    last_report = time.monotonic()
    last_error = ""
    while not stop.wait(interval):
        try:
            if conn is None:
                conn = connect()
                log(f"connected; writing to {DATABASE}")
                unreachable_since = None
            write_once(conn, rng)
            written += 1
            last_error = ""
        except pymysql.err.MySQLError as exc:
            lost = isinstance(exc, pymysql.err.OperationalError | pymysql.err.InterfaceError) and (
                not exc.args or exc.args[0] in (2002, 2003, 2006, 2013, 0)
            )
            message = f"{type(exc).__name__}: {exc}"
            if lost:
                if conn is not None:
                    conn.close()
                    conn = None
                unreachable_since = unreachable_since or time.monotonic()
                if server_gone() and time.monotonic() - unreachable_since > gone_after:
                    log(f"the service server is gone ({message}); stopping")
                    return 1
            if message != last_error:  # one line per new problem, not one per tick
                log(f"write failed ({message}); retrying")
                last_error = message
        if time.monotonic() - last_report >= 60:
            log(f"{written} transactions written so far")
            last_report = time.monotonic()
    if conn is not None:
        conn.close()
    log(f"stopped after {written} transactions")
    return 0

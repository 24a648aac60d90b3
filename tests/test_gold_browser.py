"""The labelers' page in a real browser against the real `crucible gold serve`.

Two labelers label the same records with the keyboard (Ctrl+S saves a draft, Ctrl+Enter
submits and moves on), a reviewer adjudicates the record they disagree on, a stale save
shows both versions, and the approved answers are locked and verified on disk.

The browser is Debian's chromium (playwright's own download does not work here);
`make install` installs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from gold.labeling_store import LabelingStore
from gold.people import add_user
from tests.gold_fixtures import REPO, serving_gold

SET = "triage_browser"
TASK = "datagen.tasks.support_triage:TASK"

TICKETS = {
    "blender": "hi my order A-482913 came today and the glass jar of the blender is cracked. "
               "i want a replacement not a refund",
    "lamp": "where is my parcel?? order A-100200, the desk lamp was due on monday and tracking "
            "still says label created",
    "login": "I can't log in to my account since yesterday, the reset email never arrives",
}
BLENDER = {"category": "damaged_item", "priority": "high", "order_id": "A-482913", "product": "blender",
           "needs_human": True, "summary": "Blender arrived with a cracked glass jar; customer wants a replacement."}
LAMP_ANN = {"category": "shipping_delay", "priority": "normal", "order_id": "A-100200", "product": "desk lamp",
            "needs_human": False, "summary": "Desk lamp order is late and tracking has not moved."}
LAMP_BOB = LAMP_ANN | {"priority": "high"}  # bob reads "??" as an angry customer


@dataclass
class GoldServer:
    url: str
    db: Path
    gold_root: Path
    secrets: dict[str, str]
    records: dict[str, int]  # ticket name -> record id


def crucible(*args: str) -> subprocess.CompletedProcess:
    # The exit status is the point of each call, so it is returned rather than checked here.
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], check=False, cwd=REPO,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def gold_server(tmp_path_factory) -> GoldServer:
    """`crucible gold serve` on a fresh database: labelers ann, bob and cara, reviewer rita,
    and one set (2 labels per record) holding the three tickets."""
    folder = tmp_path_factory.mktemp("gold")
    db, gold_root = folder / "labeling.sqlite3", folder / "sets"
    store = LabelingStore(db)
    try:
        secrets = {name: add_user(store, "test", name, role)
                   for name, role in [("ann", "labeler"), ("bob", "labeler"), ("cara", "labeler"),
                                      ("rita", "reviewer")]}
        store.create_set("test", SET, TASK, 2)
        with store.transaction():
            records = {name: store.add_record("test", SET, text, "browser-test", {"ticket": name}, False)
                       for name, text in TICKETS.items()}
    finally:
        store.close()
    (gold_root / SET).mkdir(parents=True)
    (gold_root / SET / "GUIDELINES.md").write_text("# triage_browser\n\nLabel as the support_triage rules say.\n")

    with serving_gold(db, gold_root, folder / "serve.log") as (_, url):
        yield GoldServer(url, db, gold_root, secrets, records)


@pytest.fixture(scope="module")
def browser() -> Browser:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed, and the labelers' page is tested in a real browser: "
                    "run `make install`, which installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def log_in(browser: Browser, server: GoldServer, name: str) -> Page:
    """A new browser context logged in as `name` through the login form."""
    page = browser.new_context(base_url=server.url).new_page()
    page.goto("/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=secret]", server.secrets[name])
    page.click("form.login button[type=submit]")
    expect(page).to_have_url(f"{server.url}/")
    expect(page.locator("header .who")).to_contain_text(name)
    return page


def record_url(server: GoldServer, ticket: str) -> str:
    return f"{server.url}/sets/{SET}/records/{server.records[ticket]}"


def arrived(page: Page, url: str | re.Pattern) -> None:
    """Wait until `page` is on `url` with label.js loaded, so that shortcuts work."""
    expect(page).to_have_url(url)
    page.wait_for_load_state("load")


def fill_answer(page: Page, answer: dict) -> None:
    page.select_option("#f-category", answer["category"])
    page.select_option("#f-priority", answer["priority"])
    page.fill("#f-order_id", answer["order_id"] or "")
    page.fill("#f-product", answer["product"] or "")
    page.fill("#f-summary", answer["summary"])
    page.set_checked("#f-needs_human", answer["needs_human"])


def statuses(page: Page) -> dict[int, str]:
    response = page.request.get(f"/api/sets/{SET}/records")
    assert response.ok, response.text()
    return {record["id"]: record["status"] for record in response.json()}


def test_label_review_lock_and_verify(gold_server: GoldServer, browser: Browser):
    server = gold_server
    blender, lamp = server.records["blender"], server.records["lamp"]

    # ann labels both records with the keyboard; Ctrl+Enter submits and opens the next one.
    ann = log_in(browser, server, "ann")
    ann.goto(f"/sets/{SET}")
    ann.click("#start-labeling")
    arrived(ann, record_url(server, "blender"))
    fill_answer(ann, BLENDER)
    ann.keyboard.press("Control+Enter")
    arrived(ann, record_url(server, "lamp"))
    fill_answer(ann, LAMP_ANN)
    ann.keyboard.press("Control+Enter")
    arrived(ann, record_url(server, "login"))
    ann.goto(f"/sets/{SET}")
    expect(ann.locator("section.progress tr.me td")).to_have_text(["ann", "0", "2"])

    # bob labels the same two: agrees on the blender, says high where ann said normal on the lamp.
    bob = log_in(browser, server, "bob")
    bob.goto(f"/sets/{SET}")
    bob.click("#start-labeling")
    arrived(bob, record_url(server, "blender"))
    fill_answer(bob, BLENDER)
    bob.keyboard.press("Control+S")
    expect(bob.locator("#message")).to_contain_text("Draft saved")
    expect(bob).to_have_url(record_url(server, "blender"))
    bob.keyboard.press("Control+Enter")
    arrived(bob, record_url(server, "lamp"))
    fill_answer(bob, LAMP_BOB)
    bob.keyboard.press("Control+Enter")
    arrived(bob, record_url(server, "login"))

    assert statuses(bob) == {blender: "submitted", lamp: "in_review", server.records["login"]: "draft"}

    # A labeler never sees another labeler's answer, even once the record is in review.
    ann.goto(record_url(server, "lamp"))
    expect(ann.locator("#record-status")).to_have_text("in review")
    expect(ann.locator("#labels-table")).to_have_count(0)
    expect(ann.locator("#f-priority")).to_have_value("normal")
    assert "bob" not in ann.content()
    seen = ann.request.get(f"/api/sets/{SET}/records/{lamp}").json()
    assert seen["labels"] == [] and seen["mine"]["labeler"] == "ann"

    # rita reviews: the disagreement first, with the differing field highlighted.
    rita = log_in(browser, server, "rita")
    rita.goto(f"/sets/{SET}")
    rita.click("#start-review")
    arrived(rita, record_url(server, "lamp"))
    expect(rita.locator("#review-reason")).to_contain_text("labels differ on priority")
    expect(rita.locator("#labels-table tr.differs")).to_have_count(1)
    expect(rita.locator("#labels-table tr.differs")).to_contain_text("priority")
    rita.select_option("#f-priority", "high")
    rita.keyboard.press("Control+Enter")
    arrived(rita, record_url(server, "blender"))
    expect(rita.locator("#labels-table tr.differs")).to_have_count(0)
    rita.keyboard.press("Control+Enter")
    arrived(rita, f"{server.url}/sets/{SET}?reviewed=1")
    assert statuses(rita) == {blender: "approved", lamp: "approved", server.records["login"]: "draft"}

    # Rita makes her signing key (outside any checkout), locks and signs the approved
    # records, and they verify; then one byte is tampered with.
    db, root = str(server.db), str(server.gold_root)
    key = str(server.db.parent / "rita-key" / "gold.pem")
    made = crucible("gold", "keygen", "--owner", "rita", "--key", key, "--gold-root", root)
    assert made.returncode == 0, made.stdout + made.stderr
    locked = crucible("gold", "lock", SET, "--as", "rita", "--db", db, "--gold-root", root, "--key", key)
    assert locked.returncode == 0, locked.stdout + locked.stderr
    verified = crucible("gold", "verify", "--db", db, "--gold-root", root)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("ok")

    records = server.gold_root / SET / "v1" / "records.jsonl"
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert [(row["record"], row["reference"], row["labelers"], row["reviewer"]) for row in rows] == [
        (blender, BLENDER, ["ann", "bob"], "rita"),
        (lamp, LAMP_ANN | {"priority": "high"}, ["ann", "bob"], "rita"),
    ]

    body = bytearray(records.read_bytes())
    where = body.index(b"tracking")  # in line 2, the lamp's prompt
    body[where] ^= 0x01  # "t" -> "u"
    os.chmod(records, 0o644)
    records.write_bytes(bytes(body))
    tampered = crucible("gold", "verify", "--db", db, "--gold-root", root)
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert "FAILED" in tampered.stdout
    assert f"{records} line 2 " in tampered.stdout, tampered.stdout
    assert f"{records} line 1 " not in tampered.stdout
    assert f"{records}: changed since it was signed" in tampered.stdout


def test_stale_save_shows_both_versions(gold_server: GoldServer, browser: Browser):
    server = gold_server
    first = log_in(browser, gold_server, "cara")
    second = first.context.new_page()  # the same record open in a second tab
    for page in (first, second):
        page.goto(record_url(server, "login"))
        page.wait_for_load_state("load")

    first.select_option("#f-category", "account_access")
    first.keyboard.press("Control+S")
    expect(first.locator("#message")).to_contain_text("Draft saved (version 1)")
    expect(first.locator("#conflict")).to_be_hidden()

    second.select_option("#f-category", "product_question")
    second.keyboard.press("Control+S")
    expect(second.locator("#conflict")).to_be_visible()
    expect(second.locator("#message")).to_contain_text("saved elsewhere")
    yours = json.loads(second.locator("#conflict-yours").text_content())
    theirs = json.loads(second.locator("#conflict-theirs").text_content())
    assert yours["answer"]["category"] == "product_question" and yours["base_version"] is None
    assert theirs["answer"]["category"] == "account_access" and theirs["version"] == 1

"""A text label's checks edited in a real browser against the real `crucible gold serve`:
a check added per kind, its inputs shown for its kind alone, one removed, an unsafe
pattern refused on the page with the reason, and the label stored as typed."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from gold.labeling_store import LabelingStore
from gold.people import add_user
from tests.gold_fixtures import serving_gold
from tests.test_gold_browser import GoldServer, arrived, browser, log_in  # noqa: F401 (browser: a fixture)

SET = "reply_browser"
TICKET = "From: Maya Lund\nOrder: A-204518\nSubject: Cracked lamp\n\nMy desk lamp arrived cracked."
REPLY = "Hi Maya,\n\nA replacement lamp for order A-204518 ships today.\n\n— Juniper Support"


@pytest.fixture(scope="module")
def reply_server(tmp_path_factory) -> GoldServer:
    folder = tmp_path_factory.mktemp("gold")
    db, gold_root = folder / "labeling.sqlite3", folder / "sets"
    store = LabelingStore(db)
    try:
        secrets = {"ann": add_user(store, "test", "ann", "labeler")}
        store.create_set("test", SET, "datagen.tasks.support_reply:TASK", 1)
        with store.transaction():
            record = store.add_record("test", SET, TICKET, "browser-test", {}, False)
    finally:
        store.close()
    (gold_root / SET).mkdir(parents=True)
    (gold_root / SET / "GUIDELINES.md").write_text("# reply_browser\n")
    with serving_gold(db, gold_root, folder / "serve.log") as (_, url):
        yield GoldServer(url, db, gold_root, secrets, {"lamp": record})


def test_a_labeler_writes_a_reply_and_its_checks_in_the_form(reply_server: GoldServer, browser: Browser):
    ann = log_in(browser, reply_server, "ann")
    ann.goto(f"/sets/{SET}/records/{reply_server.records['lamp']}")
    arrived(ann, f"{reply_server.url}/sets/{SET}/records/{reply_server.records['lamp']}")
    ann.fill("#f-reply", REPLY)
    rows = ann.locator("#f-checks > .check")

    def add(kind: str):
        ann.click("#f-checks .add-check")
        row = rows.last
        row.locator(".check-kind").select_option(kind)
        return row

    names = add("names_field")
    expect(names.locator(".check-terms")).to_be_hidden()
    expect(names.locator(".check-value")).to_be_visible()
    names.locator(".check-field").fill("order_id")
    names.locator(".check-value").fill("A-204518")
    mention = add("must_mention")
    mention.locator(".check-terms").fill("replacement\n  ships today \n")
    add("max_words").locator(".check-limit").fill("40")
    pattern = add("matches_pattern")
    pattern.locator(".check-pattern").fill("(\\w+\\s?)*$")
    rows.nth(2).locator(".remove-check").click()  # the max_words check, on second thought
    expect(rows).to_have_count(3)

    ann.keyboard.press("Control+Enter")
    expect(ann.locator("#error-checks")).to_contain_text("a quantifier over a group that is itself repeated")
    pattern.locator(".check-pattern").fill("Juniper Support\\s*$")
    ann.keyboard.press("Control+Enter")
    arrived(ann, f"{reply_server.url}/sets/{SET}?done=1")

    label = ann.request.get(f"/api/sets/{SET}/records/{reply_server.records['lamp']}").json()["mine"]
    assert (label["status"], label["answer"]) == ("submitted", {"reply": REPLY, "checks": [
        {"kind": "names_field", "field": "order_id", "value": "A-204518"},
        {"kind": "must_mention", "terms": ["replacement", "ships today"], "mode": "all"},
        {"kind": "matches_pattern", "pattern": "Juniper Support\\s*$"}]})

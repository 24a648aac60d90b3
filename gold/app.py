"""The labelers' web page and its JSON API: `crucible gold serve`.

Pages (server-rendered with Jinja2, a little JavaScript for the form and shortcuts):
`/login`, `/` (every set with its progress), `/sets/<set>` (the queue), `/sets/<set>/
records/<id>` (label, or review), `/sets/<set>/guidelines`, `/sets/<set>/agreement`,
`/sets/<set>/audit`. The API under `/api/` is what the page calls; it is also how a
script drives labeling. Every page and call needs a session cookie from `/login`.

Rules live in `labeling_store.py`; this file maps its refusals to HTTP: NotFound 404,
NotAllowed 403, StateConflict and StaleEdit 409 (the latter with `yours` and `theirs`),
InvalidLabel 422 with one error per field, a bad set name 404. The session cookie is
HttpOnly and SameSite=Strict, so another site cannot make a browser save labels.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any, Iterator

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from pydantic import BaseModel, ConfigDict, Field

from gold.agreement import agreement
from gold.gold_sets import GUIDELINES, GoldSetError, form_fields, set_dir
from gold.labeling_store import (
    InvalidLabel, LabelingStore, NotAllowed, NotFound, StaleEdit, StateConflict, User,
)
from gold.people import log_in, log_out, session_user

COOKIE = "crucible_gold_session"
_HERE = Path(__file__).parent


class NotLoggedIn(Exception):
    pass


class LabelSave(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: dict[str, Any] | None = None
    input_text: str | None = None
    note: str | None = None
    discard_reason: str | None = None
    submit: bool = False
    base_version: int | None = Field(None, description="the version of your label this edit started from")


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: dict[str, Any]
    input_text: str | None = None
    note: str | None = None
    base_version: int


class Discard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str
    base_version: int


class Reopen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_version: int


def create_app(db: Path, gold_root: Path) -> FastAPI:
    app = FastAPI(title="crucible gold", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=_HERE / "templates")
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    markdown = MarkdownIt("commonmark", {"html": False}).enable("table")

    def open_store() -> Iterator[LabelingStore]:
        store = LabelingStore(db)
        try:
            yield store
        finally:
            store.close()

    def current_user(request: Request, store: LabelingStore = Depends(open_store)) -> User:
        user = session_user(store, request.cookies.get(COOKIE))
        if user is None:
            raise NotLoggedIn()
        return user

    def page(request: Request, name: str, user: User | None, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"user": user, **context})

    # ---- errors ----

    def error(status: int, message: str, **extra: Any) -> JSONResponse:
        return JSONResponse({"error": message, **extra}, status_code=status)

    @app.exception_handler(NotLoggedIn)
    def _not_logged_in(request: Request, _: NotLoggedIn) -> Response:
        if request.url.path.startswith("/api/"):
            return error(401, "log in first")
        return RedirectResponse("/login", status_code=303)

    app.exception_handler(NotFound)(lambda request, exc: error(404, str(exc)))
    app.exception_handler(GoldSetError)(lambda request, exc: error(404, str(exc)))
    app.exception_handler(NotAllowed)(lambda request, exc: error(403, str(exc)))
    app.exception_handler(StateConflict)(lambda request, exc: error(409, str(exc)))
    app.exception_handler(StaleEdit)(lambda request, exc: error(409, str(exc), yours=exc.yours, theirs=exc.theirs))
    app.exception_handler(InvalidLabel)(lambda request, exc: error(
        422, str(exc), errors=[{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors]))

    # ---- login ----

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> HTMLResponse:
        return page(request, "login.html", None, failed=False)

    @app.post("/login")
    def login(request: Request, name: str = Form(...), secret: str = Form(...),
              store: LabelingStore = Depends(open_store)) -> Response:
        try:
            token = log_in(store, name, secret)
        except NotAllowed:
            response = page(request, "login.html", None, failed=True)
            response.status_code = 401
            return response
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=12 * 3600)
        return response

    @app.post("/logout")
    def logout(request: Request, store: LabelingStore = Depends(open_store)) -> Response:
        if request.cookies.get(COOKIE):
            log_out(store, request.cookies[COOKIE])
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # ---- pages ----

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, user: User = Depends(current_user), store: LabelingStore = Depends(open_store)):
        sets = [{**gold_set, "progress": store.progress(gold_set["name"])} for gold_set in store.gold_sets()]
        return page(request, "index.html", user, sets=sets)

    @app.get("/sets/{name}", response_class=HTMLResponse)
    def set_page(request: Request, name: str, user: User = Depends(current_user),
                 store: LabelingStore = Depends(open_store)):
        return page(request, "set.html", user, gold_set=store.gold_set(name), progress=store.progress(name),
                    records=store.records(user, name), next_review=store.next_review(user, name) if user.reviews else None)

    @app.get("/sets/{name}/next")
    def next_page(name: str, after: int = 0, user: User = Depends(current_user),
                  store: LabelingStore = Depends(open_store)) -> Response:
        record = store.next_record(user, name, after)
        return RedirectResponse(f"/sets/{name}/records/{record}" if record else f"/sets/{name}?done=1", status_code=303)

    @app.get("/sets/{name}/review/next")
    def next_review_page(name: str, user: User = Depends(current_user),
                         store: LabelingStore = Depends(open_store)) -> Response:
        record = store.next_review(user, name) if user.reviews else None
        return RedirectResponse(f"/sets/{name}/records/{record}" if record else f"/sets/{name}?reviewed=1",
                                status_code=303)

    @app.get("/sets/{name}/records/{record_id}", response_class=HTMLResponse)
    def record_page(request: Request, name: str, record_id: int, user: User = Depends(current_user),
                    store: LabelingStore = Depends(open_store)):
        record = store.record_view(user, name, record_id)
        schema = store.label_schema(name)
        answered = [label["answer"] for label in record["labels"] if label["answer"]]
        differing = {field for a, b in combinations(answered, 2) for field in schema.compare(a, b)}
        return page(request, "record.html", user, gold_set=store.gold_set(name), record=record,
                    fields=form_fields(schema.answer_schema), differing=differing)

    @app.get("/sets/{name}/guidelines", response_class=HTMLResponse)
    def guidelines_page(request: Request, name: str, user: User = Depends(current_user),
                        store: LabelingStore = Depends(open_store)):
        gold_set = store.gold_set(name)
        path = set_dir(gold_root, name) / GUIDELINES
        text = path.read_text() if path.is_file() else f"No guidelines yet: write {path}."
        return page(request, "guidelines.html", user, gold_set=gold_set, html=markdown.render(text))

    @app.get("/sets/{name}/agreement", response_class=HTMLResponse)
    def agreement_page(request: Request, name: str, user: User = Depends(current_user),
                       store: LabelingStore = Depends(open_store)):
        return page(request, "agreement.html", user, gold_set=store.gold_set(name),
                    figures=set_agreement(store, name), progress=store.progress(name))

    @app.get("/sets/{name}/audit", response_class=HTMLResponse)
    def audit_page(request: Request, name: str, record: int | None = None, user: User = Depends(current_user),
                   store: LabelingStore = Depends(open_store)):
        return page(request, "audit.html", user, gold_set=store.gold_set(name),
                    entries=audit_entries(user, store, name, record), record=record)

    # ---- API ----

    @app.get("/api/me")
    def me(user: User = Depends(current_user)) -> dict:
        return {"name": user.name, "role": user.role}

    @app.get("/api/sets")
    def api_sets(user: User = Depends(current_user), store: LabelingStore = Depends(open_store)) -> list[dict]:
        return [{**gold_set, "progress": store.progress(gold_set["name"])} for gold_set in store.gold_sets()]

    @app.get("/api/sets/{name}/records")
    def api_records(name: str, user: User = Depends(current_user), store: LabelingStore = Depends(open_store)):
        return store.records(user, name)

    @app.get("/api/sets/{name}/records/{record_id}")
    def api_record(name: str, record_id: int, user: User = Depends(current_user),
                   store: LabelingStore = Depends(open_store)) -> dict:
        return store.record_view(user, name, record_id)

    @app.put("/api/sets/{name}/records/{record_id}/label")
    def api_save_label(name: str, record_id: int, body: LabelSave, user: User = Depends(current_user),
                       store: LabelingStore = Depends(open_store)) -> dict:
        label = store.save_label(user, name, record_id, **body.model_dump())
        return {"label": label, "record": store.record_view(user, name, record_id)}

    @app.post("/api/sets/{name}/records/{record_id}/approve")
    def api_approve(name: str, record_id: int, body: Approval, user: User = Depends(current_user),
                    store: LabelingStore = Depends(open_store)) -> dict:
        return store.approve(user, name, record_id, **body.model_dump())

    @app.post("/api/sets/{name}/records/{record_id}/discard")
    def api_discard(name: str, record_id: int, body: Discard, user: User = Depends(current_user),
                    store: LabelingStore = Depends(open_store)) -> dict:
        return store.discard(user, name, record_id, **body.model_dump())

    @app.post("/api/sets/{name}/records/{record_id}/reopen")
    def api_reopen(name: str, record_id: int, body: Reopen, user: User = Depends(current_user),
                   store: LabelingStore = Depends(open_store)) -> dict:
        return store.reopen(user, name, record_id, **body.model_dump())

    @app.get("/api/sets/{name}/next")
    def api_next(name: str, after: int = 0, user: User = Depends(current_user),
                 store: LabelingStore = Depends(open_store)) -> dict:
        return {"record": store.next_record(user, name, after),
                "review": store.next_review(user, name) if user.reviews else None}

    @app.get("/api/sets/{name}/progress")
    def api_progress(name: str, user: User = Depends(current_user), store: LabelingStore = Depends(open_store)):
        return store.progress(name)

    @app.get("/api/sets/{name}/agreement")
    def api_agreement(name: str, user: User = Depends(current_user), store: LabelingStore = Depends(open_store)):
        return set_agreement(store, name)

    @app.get("/api/sets/{name}/audit")
    def api_audit(name: str, record: int | None = None, user: User = Depends(current_user),
                  store: LabelingStore = Depends(open_store)) -> list[dict]:
        return audit_entries(user, store, name, record)

    return app


def set_agreement(store: LabelingStore, name: str) -> dict:
    schema = store.label_schema(name)
    return agreement(store.submitted_labels(name), form_fields(schema.answer_schema), schema.compare)


def audit_entries(user: User, store: LabelingStore, name: str, record: int | None) -> list[dict]:
    # The log holds every label's before and after: labelers would see each other's answers.
    if not user.reviews:
        raise NotAllowed(f"{user.name} is a {user.role}: the audit log is for reviewers and admins")
    store.gold_set(name)
    return store.audit_entries(name, record)

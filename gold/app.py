"""The labelers' web page and its JSON API: `crucible gold serve`.

Pages (server-rendered with Jinja2, a little JavaScript for the form and shortcuts):
`/login`, `/` (every set with its purpose and progress; a reviewer or admin sets the
purpose of a set not yet locked there), `/sets/<set>` (the queue), `/sets/<set>/
records/<id>` (label, or review), `/sets/<set>/guidelines`, `/sets/<set>/agreement`,
`/sets/<set>/audit`. The API under `/api/` is what the page calls; it is also how a
script drives labeling. Every page and call needs a session cookie from `/login`.

Rules live in `labeling_store.py`; this file maps its refusals to HTTP: NotFound 404,
NotAllowed 403, StateConflict and StaleEdit 409 (the latter with `yours` and `theirs`),
InvalidLabel 422 with one error per field, a bad set name or record id 404. The session
cookie is HttpOnly and SameSite=Strict, so another site cannot make a browser save
labels, and Secure when the page is served over HTTPS (`https`: its own TLS, or a TLS
proxy in front). Failed logins are throttled and audited (`login_throttle.py`);
cross-origin changes and oversized bodies are refused (`request_guards.py`); every
response carries a strict Content-Security-Policy (`security_headers.py`).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from itertools import combinations
from pathlib import Path
from typing import Any, Iterator

import anyio
from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException

from datagen.foundation.text_checks import CHECK_KINDS
from gold.agreement import agreement
from gold.gold_sets import GUIDELINES, PURPOSES, GoldSetError, Purpose, form_fields, set_dir
from gold.labeling_store import (
    MAX_ROW_ID,
    InvalidLabel,
    LabelingStore,
    NotAllowed,
    NotFound,
    StaleEdit,
    StateConflict,
    User,
)
from gold.login_throttle import LockedOut, LoginThrottle, SecretCheckSlots, ServerBusy
from gold.people import log_failed_login, log_in, log_out, session_user
from gold.request_guards import BodyLimit, SameOriginChanges
from gold.security_headers import SecurityHeaders

COOKIE = "crucible_gold_session"
_HERE = Path(__file__).parent
# A query naming a record (`?after=`, `?record=`) must fit SQLite's INTEGER (422 if not);
# the id in a path is the store's to check, and any id that names no record is a 404.
AFTER_RECORD = Query(0, ge=0, le=MAX_ROW_ID)
ONE_RECORD = Query(None, ge=1, le=MAX_ROW_ID)


class NotLoggedIn(Exception):
    pass


class ApiBody(BaseModel):
    """A request body: no unknown fields, and storable as JSON text. Python's JSON reader
    accepts NaN, 1e999 and lone surrogates ("\\ud800"); SQLite cannot store the last and
    no JSON answer can carry the others, so they are a 422 here, not a 500 later."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _storable(self) -> ApiBody:
        try:
            json.dumps(self.model_dump(), ensure_ascii=False, allow_nan=False).encode()
        except ValueError as error:  # UnicodeEncodeError is a ValueError
            raise ValueError(f"not storable as JSON text: {error}") from None
        return self


class LabelSave(ApiBody):
    answer: dict[str, Any] | None = None
    input_text: str | None = None
    note: str | None = None
    discard_reason: str | None = None
    submit: bool = False
    base_version: int | None = Field(None, description="the version of your label this edit started from")


class Approval(ApiBody):
    answer: dict[str, Any]
    input_text: str | None = None
    note: str | None = None
    base_version: int


class Discard(ApiBody):
    reason: str
    base_version: int


class Reopen(ApiBody):
    base_version: int


class PurposeChange(ApiBody):
    purpose: Purpose


def create_app(db: Path, gold_root: Path, https: bool = False) -> FastAPI:
    """The page on the labeling database `db`; `https`: browsers reach it over HTTPS."""
    app = FastAPI(title="crucible gold", docs_url=None, redoc_url=None, openapi_url=None)
    # The last added runs first: headers go on every answer, refusals included.
    app.add_middleware(BodyLimit)
    app.add_middleware(SameOriginChanges, https=https)
    app.add_middleware(SecurityHeaders)
    templates = Jinja2Templates(directory=_HERE / "templates")
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    markdown = MarkdownIt("commonmark", {"html": False}).enable("table")

    def open_store() -> Iterator[LabelingStore]:
        store = LabelingStore(db)
        try:
            yield store
        finally:
            store.close()

    opened_store = contextmanager(open_store)  # for code that runs outside a route's dependencies

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

    @app.exception_handler(RequestValidationError)
    def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        # The only typed path parameter is the record id: "/records/abc" names no record.
        if any(e["loc"][0] == "path" for e in errors):
            name, record_id = request.path_params.get("name"), request.path_params.get("record_id", "")
            return error(404, f"gold set {name} has no record {record_id[:40]}")
        # FastAPI's own answer echoes the input back, NaN and megabytes included.
        fields = [{"field": ".".join(map(str, e["loc"][1:])), "message": e["msg"]} for e in errors]
        return error(422, "; ".join(f"{f['field'] or 'body'}: {f['message']}" for f in fields), errors=fields)

    @app.exception_handler(HTTPException)
    def _http_error(request: Request, exc: HTTPException) -> Response:
        # No such route or method, a body too large: the same {"error": ...} as the rest.
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    # ---- login ----

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> HTMLResponse:
        return page(request, "login.html", None, message=None)

    throttle, slots = LoginThrottle(), SecretCheckSlots()

    def check_secret(name: str, secret: str, address: str) -> str | None:
        with slots.slot(), opened_store() as store:
            try:
                return log_in(store, name, secret, address=address)
            except NotAllowed:
                return None

    def record_refusal(name: str, address: str, reason: str) -> None:
        with opened_store() as store:
            log_failed_login(store, name, address, reason)

    def login_refused(request: Request, status: int, message: str, retry_after_s: int | None = None) -> Response:
        response = page(request, "login.html", None, message=message)
        response.status_code = status
        if retry_after_s is not None:
            response.headers["Retry-After"] = str(retry_after_s)
        return response

    @app.post("/login")
    async def login(request: Request, name: str = Form(...), secret: str = Form(...)) -> Response:
        # Async: only the secret check and the audit log's lines need a worker thread.
        address = request.client.host if request.client else "unknown"
        try:
            throttle.admit(name, address)
        except LockedOut as refused:
            await anyio.to_thread.run_sync(record_refusal, name, address,
                                           f"locked out: {refused.retry_after_s} s left")
            return login_refused(request, 429, str(refused), refused.retry_after_s)
        try:
            token = await anyio.to_thread.run_sync(check_secret, name, secret, address)
        except ServerBusy as busy:
            throttle.withdrawn(name, address)
            await anyio.to_thread.run_sync(record_refusal, name, address, "too many logins at once")
            return login_refused(request, 503, str(busy), busy.retry_after_s)
        except BaseException:
            throttle.withdrawn(name, address)
            raise
        if token is None:
            throttle.failed(name, address)
            return login_refused(request, 401, "Unknown user or wrong secret.")
        throttle.succeeded(name, address)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=https, max_age=12 * 3600)
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
        return page(request, "index.html", user, sets=sets, purposes=PURPOSES)

    @app.post("/sets/{name}/purpose")
    def purpose_form(name: str, purpose: Purpose = Form(...), user: User = Depends(current_user),
                     store: LabelingStore = Depends(open_store)) -> Response:
        store.set_purpose(user, name, purpose)
        return RedirectResponse("/", status_code=303)

    @app.get("/sets/{name}", response_class=HTMLResponse)
    def set_page(request: Request, name: str, user: User = Depends(current_user),
                 store: LabelingStore = Depends(open_store)):
        return page(request, "set.html", user, gold_set=store.gold_set(name), progress=store.progress(name),
                    records=store.records(user, name), next_review=store.next_review(user, name) if user.reviews else None)

    @app.get("/sets/{name}/next")
    def next_page(name: str, after: int = AFTER_RECORD, user: User = Depends(current_user),
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
                    fields=form_fields(schema.answer_schema), differing=differing, check_kinds=CHECK_KINDS)

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
    def audit_page(request: Request, name: str, record: int | None = ONE_RECORD, user: User = Depends(current_user),
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

    @app.put("/api/sets/{name}/purpose")
    def api_set_purpose(name: str, body: PurposeChange, user: User = Depends(current_user),
                        store: LabelingStore = Depends(open_store)) -> dict:
        return store.set_purpose(user, name, body.purpose)

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
    def api_next(name: str, after: int = AFTER_RECORD, user: User = Depends(current_user),
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
    def api_audit(name: str, record: int | None = ONE_RECORD, user: User = Depends(current_user),
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

// The labeling form: collect the answer from the schema-built fields, save it through
// the API, and show a refused (stale) save with both versions. Shortcuts: Ctrl+Enter
// submits (approves when reviewing), Ctrl+S saves a draft, Alt+N goes to the next record.
// A text label's checks are edited as rows (one per check: its kind, and the inputs that
// kind takes); the server validates them (datagen/foundation/text_checks.py).
(function () {
  const state = JSON.parse(document.getElementById("state").textContent);
  const base = `/api/sets/${state.set}/records/${state.record}`;
  const message = document.getElementById("message");
  let pending = null; // the last refused request, to resend over the saved version

  function say(text, kind) {
    message.textContent = text;
    message.className = kind || "";
  }

  function lines(text) {
    return text.split("\n").map((line) => line.trim()).filter((line) => line !== "");
  }

  function collectCheck(row) {
    const kind = row.querySelector(".check-kind").value;
    const value = (selector) => row.querySelector(selector).value;
    if (kind === "must_mention") return {kind, terms: lines(value(".check-terms")), mode: value(".check-mode")};
    if (kind === "must_not_say") return {kind, terms: lines(value(".check-terms"))};
    if (kind === "matches_pattern") return {kind, pattern: value(".check-pattern")};
    if (kind === "max_words") {
      const limit = value(".check-limit").trim();
      return {kind, limit: /^\d+$/.test(limit) ? Number(limit) : limit};  // the server says what is wrong
    }
    return {kind, field: value(".check-field").trim(), value: value(".check-value").trim()};
  }

  function showKindInputs(row) {
    const kind = row.querySelector(".check-kind").value;
    for (const param of row.querySelectorAll(".param")) param.hidden = !param.dataset.kinds.split(" ").includes(kind);
  }

  for (const checks of document.querySelectorAll("#answer-form .checks")) {
    checks.addEventListener("change", (event) => {
      if (event.target.classList.contains("check-kind")) showKindInputs(event.target.closest(".check"));
    });
    checks.addEventListener("click", (event) => {
      if (event.target.classList.contains("remove-check")) event.target.closest(".check").remove();
      if (event.target.classList.contains("add-check")) {
        const row = checks.querySelector(".check-template").content.firstElementChild.cloneNode(true);
        checks.insertBefore(row, event.target);
        showKindInputs(row);
        row.querySelector(".check-kind").focus();
      }
    });
  }

  function collectAnswer() {
    const answer = {};
    for (const field of document.querySelectorAll("#answer-form [data-field]")) {
      const name = field.dataset.field, kind = field.dataset.kind;
      const nullable = field.dataset.nullable === "true";
      const input = document.getElementById(`f-${name}`);
      if (kind === "checkbox") answer[name] = input.checked;
      else if (kind === "checks") answer[name] = Array.from(input.querySelectorAll(":scope > .check"), collectCheck);
      else if (kind === "longtext") answer[name] = input.value;
      else if (kind === "json") {
        const text = input.value.trim();
        try { answer[name] = text === "" ? null : JSON.parse(text); }
        catch (e) { throw new Error(`${name}: not valid JSON (${e.message})`); }
      } else answer[name] = input.value.trim() === "" && nullable ? null : input.value;
    }
    return answer;
  }

  function clearErrors() {
    for (const span of document.querySelectorAll(".field-error")) span.textContent = "";
  }

  function showErrors(errors) {
    for (const error of errors) {
      const name = error.field.split(".")[0];
      const span = document.getElementById(`error-${name}`);
      if (span) span.textContent = error.message;
    }
  }

  async function send(method, url, body) {
    const response = await fetch(url, {
      method, credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (response.ok) return data;
    if (response.status === 401) { window.location = "/login"; return null; }
    if (response.status === 422 && data.errors) showErrors(data.errors);
    if (response.status === 409 && "theirs" in data) showConflict(method, url, body, data);
    say(data.error || `failed: ${response.status}`, "error");
    return null;
  }

  function showConflict(method, url, body, data) {
    pending = {method, url, body, theirs: data.theirs};
    document.getElementById("conflict-message").textContent = data.error;
    document.getElementById("conflict-yours").textContent = JSON.stringify(data.yours, null, 1);
    document.getElementById("conflict-theirs").textContent = JSON.stringify(data.theirs, null, 1);
    document.getElementById("conflict").hidden = false;
  }

  function inputText() { return document.getElementById("input-text").value; }
  function note() { return document.getElementById("note").value || null; }

  async function saveLabel(submit, discardReason) {
    clearErrors();
    let answer;
    try { answer = discardReason ? null : collectAnswer(); }
    catch (e) { say(e.message, "error"); return; }
    const saved = await send("PUT", `${base}/label`, {
      answer, input_text: inputText(), note: note(), discard_reason: discardReason || null,
      submit, base_version: state.label_version,
    });
    if (!saved) return;
    state.label_version = saved.label.version;
    if (submit) window.location = `/sets/${state.set}/next?after=${state.record}`;
    else say(`Draft saved (version ${saved.label.version}).`, "ok");
  }

  async function approve() {
    clearErrors();
    let answer;
    try { answer = collectAnswer(); } catch (e) { say(e.message, "error"); return; }
    const done = await send("POST", `${base}/approve`, {
      answer, input_text: inputText(), note: note(), base_version: state.record_version,
    });
    if (done) window.location = `/sets/${state.set}/review/next`;
  }

  async function discard() {
    const reason = document.getElementById("discard-reason").value.trim();
    if (!reason) { say("Give a reason to discard.", "error"); return; }
    if (state.mode === "label") return saveLabel(true, reason);
    const done = await send("POST", `${base}/discard`, {reason, base_version: state.record_version});
    if (done) window.location = `/sets/${state.set}/review/next`;
  }

  async function reopen() {
    const done = await send("POST", `${base}/reopen`, {base_version: state.record_version});
    if (done) window.location.reload();
  }

  // Enter in a field would submit the form as a page load: saving goes through the API.
  document.getElementById("answer-form").addEventListener("submit", (event) => event.preventDefault());

  function on(id, handler) {
    const element = document.getElementById(id);
    if (element) element.addEventListener("click", handler);
  }
  on("save-draft", () => saveLabel(false));
  on("submit", () => saveLabel(true));
  on("propose-discard", discard);
  on("approve", approve);
  on("discard", discard);
  on("reopen", reopen);
  on("conflict-reload", () => window.location.reload());
  on("conflict-overwrite", async () => {
    if (!pending) return;
    // Resend over the version that was saved first, now that its content has been shown.
    const body = {...pending.body};
    body.base_version = pending.theirs ? pending.theirs.version : null;
    document.getElementById("conflict").hidden = true;
    const done = await send(pending.method, pending.url, body);
    if (done) window.location.reload();
  });

  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      event.preventDefault();
      if (state.mode === "label") saveLabel(true);
      else if (state.mode === "review") approve();
    } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
      event.preventDefault();
      if (state.mode === "label") saveLabel(false);
    } else if (event.altKey && event.key.toLowerCase() === "n") {
      event.preventDefault();
      document.getElementById("next").click();
    }
  });
  const first = document.querySelector("#answer-form select, #answer-form input");
  if (first && state.mode !== "view") first.focus();
})();

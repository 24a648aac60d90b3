"""A fake of the Hugging Face Hub on loopback: the five endpoints a commit to a dataset repo
uses (create repo, create branch, validate the card's YAML, preupload, commit), enough for
the real `HfApi` to push to it. Every file is taken as a regular git blob (no LFS, no Xet),
and what each commit holds is kept, so a test can read back what was sent.

`refuse_with=401` answers every request with that status, as the Hub answers a bad token.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self, refuse_with: int | None = None):
        self.refuse_with = refuse_with
        self.created: list[dict] = []  # create-repo payloads
        self.branches: list[tuple[str, str]] = []  # (repo id, branch)
        self.commits: list[dict] = []  # {"repo", "revision", "summary", "files": {path: bytes}}
        self.tokens: set[str] = set()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hub.tokens.add(self.headers.get("Authorization", ""))
                if hub.refuse_with is not None:
                    return self._answer({"error": "Invalid credentials in Authorization header"}, hub.refuse_with)
                route = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/(branch|preupload|commit)/([^/?]+)(\?.*)?",
                                     self.path)
                if self.path == "/api/repos/create":
                    payload = json.loads(body)
                    hub.created.append(payload)
                    return self._answer({"url": f"{hub.url}/datasets/{payload['organization']}/{payload['name']}"})
                if self.path == "/api/validate-yaml":
                    return self._answer({"errors": [], "warnings": []})
                if route and route[2] == "branch":
                    hub.branches.append((route[1], route[3]))
                    return self._answer({})
                if route and route[2] == "preupload":
                    files = json.loads(body)["files"]
                    return self._answer({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                                    "oid": None} for f in files]})
                if route and route[2] == "commit":
                    items = [json.loads(line) for line in body.splitlines() if line.strip()]
                    header = next(i["value"] for i in items if i["key"] == "header")
                    files = {i["value"]["path"]: base64.b64decode(i["value"]["content"])
                             for i in items if i["key"] == "file"}
                    hub.commits.append({"repo": route[1], "revision": route[3], "summary": header["summary"],
                                        "files": files})
                    oid = f"{len(hub.commits):040x}"
                    return self._answer({"commitUrl": f"{hub.url}/datasets/{route[1]}/commit/{oid}",
                                         "commitOid": oid, "pullRequestUrl": None})
                return self._answer({"error": f"the fake Hub has no {self.path}"}, 404)

            do_GET = do_POST

            def _answer(self, payload: dict, status: int = 200):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FakeHub":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

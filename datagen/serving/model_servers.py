"""Where each configured model listens: the endpoint's own `base_url`, or the embedded
model, which crucible serves on loopback from the first time a stage needs it until the
block that owns the servers ends (it takes a while to warm, so stages share one).

This is the one place that decides between a remote endpoint and a server crucible
starts itself; stages ask it for an `Endpoint` and never start servers.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from datagen.serving.client import Endpoint
from datagen.serving.embedded_model import CONVERSION_VERSION, embedded_model_dir
from datagen.serving.endpoint import EndpointConfig, resolve_endpoint
from datagen.serving.transformers_server import serve_model, served_model_name


class ModelServers:
    """Endpoints for configs; the embedded model's server started on first use, its log in
    `log_dir/teacher-server.log`, and stopped when `stack` closes."""

    def __init__(self, log_dir: Path, stack: contextlib.ExitStack):
        self.log_dir, self.stack = Path(log_dir), stack
        self._embedded: tuple[str, str, str] | None = None

    def endpoint(self, config: EndpointConfig) -> Endpoint:
        if config.base_url is not None:
            return resolve_endpoint(config, config.base_url, config.model, config.base_url)
        if self._embedded is None:
            model_dir = embedded_model_dir()
            base_url = self.stack.enter_context(serve_model(model_dir, self.log_dir / "teacher-server.log"))
            name = served_model_name(model_dir)
            self._embedded = (base_url, name, f"embedded:{name}@v{CONVERSION_VERSION}")
        return resolve_endpoint(config, *self._embedded)

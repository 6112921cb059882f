"""A local Confluent Schema Registry on 127.0.0.1: the part of its REST API a consumer uses.

`GET /schemas/ids/{id}` answers `{"schema": "<the schema as a JSON string>"}` and, for an id it
does not hold, HTTP 404 with `{"error_code": 40403, "message": "Schema 777 not found"}`, as
Confluent's registry documents it (docs.confluent.io, Schema Registry API reference). With
`credentials` it demands HTTP Basic auth and answers 401 (error_code 401) without it, as a
registry with basic authentication does. `failures` makes the next requests answer 503.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lsst_alert_pipeline.decode.schemas import bundled_schema, schema_id_for


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (for a registry that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SchemaRegistry:
    """The registry, serving the bundled Rubin schemas under their usual ids (major*100+minor)."""

    def __init__(self, port: int | None = None, versions: tuple[str, ...] = ("9.0", "10.0"),
                 credentials: tuple[str, str] | None = None):
        self.port = port or free_port()
        self.schemas = {schema_id_for(v): json.dumps(bundled_schema(v)) for v in versions}
        self.credentials = credentials
        self.failures = 0  # answer this many next requests with 503
        self.requests: list[tuple[str, str | None]] = []  # (path, Authorization header)
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, Any]]:
        authorization = handler.headers.get("Authorization")
        self.requests.append((handler.path, authorization))
        if self.failures > 0:
            self.failures -= 1
            return 503, {"error_code": 50302, "message": "Service Unavailable"}
        if self.credentials is not None:
            expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
            if authorization != expected:
                return 401, {"error_code": 401, "message": "Unauthorized"}
        parts = handler.path.strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["schemas", "ids"] and parts[2].isdigit():
            schema = self.schemas.get(int(parts[2]))
            if schema is None:
                return 404, {"error_code": 40403, "message": f"Schema {parts[2]} not found"}
            return 200, {"schema": schema}
        return 404, {"error_code": 404, "message": "HTTP 404 Not Found"}

    def start(self) -> SchemaRegistry:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status, body = registry._answer(self)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="SchemaRegistry"')
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SchemaRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""What the local stand-ins for the brokers' HTTP APIs share (tests/antares_standin.py,
tests/lasair_standin.py, tests/babamul_standin.py): a threading server on 127.0.0.1 at a free
port, serving from a thread of its own inside a `with` block, the paths it was asked for, and
quiet HTTP/1.1 handlers. Each stand-in adds only its routes and its broker's answers."""

from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass, field
from typing import Self


@dataclass
class RequestLog:
    """The paths a stand-in was asked for; `lock` also guards the fields a stand-in adds."""

    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class StandinServer(http.server.ThreadingHTTPServer):
    """Listens on 127.0.0.1 from construction; serves between `__enter__` and `__exit__`."""

    daemon_threads = True

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler], name: str) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self.serve_forever, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:<port>`, the start of each stand-in's base URL."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class StandinHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs behind their load balancers

    def log_message(self, *args: object) -> None:
        """Quiet."""

    def send_body(self, status: int, body: bytes, content_type: str,
                  headers: dict[str, str] | None = None) -> None:
        """One whole answer, with its length (keep-alive needs it)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

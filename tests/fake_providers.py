"""Local stand-ins for provider APIs: an HTTP server that records requests and answers with a canned reply.

Tests point the official SDKs at it, so what gets checked is the request those SDKs really send.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived on the wire."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased, so lookups do not depend on the SDK's spelling."""
    body: bytes


@dataclass
class CannedReply:
    """What the fake API answers to every request."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeHttpApi:
    """A running fake API: its base URL, the requests it saw, and the reply it gives (changeable)."""

    base_url: str
    reply: CannedReply
    requests: list[RecordedRequest] = field(default_factory=list)


def _handler_for(api: FakeHttpApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record_and_reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            api.requests.append(
                RecordedRequest(
                    method=self.command,
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=self.rfile.read(length),
                )
            )
            reply = api.reply
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_DELETE = _record_and_reply

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    return Handler


@contextmanager
def fake_http_api(reply: CannedReply) -> Iterator[FakeHttpApi]:
    """Serve `reply` on 127.0.0.1 at a free port (port 0 lets the kernel pick) until the block ends."""
    api = FakeHttpApi(base_url="", reply=reply)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(api))
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll interval makes shutdown() return quickly instead of after the default half second.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def free_port() -> int:
    """A port nothing listens on right now (for servers that cannot bind port 0 themselves)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

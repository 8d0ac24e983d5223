"""Real local network endpoints for webhook tests: an HTTP receiver that records what it gets, and a bare TCP
listener that only counts connections."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The name the e2e system allow-lists (`STRATUS_ALLOWED_PRIVATE_HOSTS`, tests/e2e/conftest.py): receivers on this
# machine are addressed by it, while the literal 127.0.0.1 stays refused, as on AWS.
ALLOWED_PRIVATE_HOST = "localhost"


class LocalHttpServer:
    """Serves `server` (bound to 127.0.0.1 by the subclass) from a thread inside a `with` block; handlers that
    wait use `_closing` to end early when the block ends."""

    server: ThreadingHTTPServer
    _closing: threading.Event

    def _serve(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.port = server.server_port
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()


class WebhookReceiver(LocalHttpServer):
    """An HTTP endpoint on 127.0.0.1 recording every POST (headers, body). It answers `statuses` in turn (the
    last one repeats), each after `delay_s` (a slow receiver)."""

    def __init__(self, *statuses: int, delay_s: float = 0.0) -> None:
        owner = self
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.connections = 0
        self._statuses = list(statuses or (204,))
        self._closing = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner._lock:
                    owner.received.append((dict(self.headers), body))
                    status = owner._statuses[min(len(owner.received), len(owner._statuses)) - 1]
                if delay_s and owner._closing.wait(delay_s):
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                request = super().get_request()
                owner.connections += 1
                return request

        self._lock = threading.Lock()
        self._serve(Server(("127.0.0.1", 0), Handler))

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class ConnectionRecorder:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts (and closes them at once)."""

    def __init__(self) -> None:
        self.connections = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.port = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def __enter__(self) -> ConnectionRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()

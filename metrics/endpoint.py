"""The exporter's HTTP/1.0, without I/O: a request head in, a whole response out.

One request per connection, answered and closed (HTTP/1.0):

  GET /metrics          -> 200, the exposition
  GET / or /healthz     -> 200, "ok"
  HEAD of those         -> the same without a body
  another method        -> 405
  another path          -> 404
  unreadable head       -> 400
  head over MAX_HEAD    -> 431
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["MAX_HEAD", "head_complete", "respond", "response"]

MAX_HEAD = 8192
END_OF_HEAD = b"\r\n\r\n"

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}

Render = Callable[[], tuple[bytes, str]]


def head_complete(data: bytes | bytearray) -> bool:
    """True once ``data`` holds the whole request head (or too much of one)."""
    return END_OF_HEAD in data or b"\n\n" in data or len(data) > MAX_HEAD


def response(status: int, body: bytes, content_type: str, *, include_body: bool = True) -> bytes:
    """Serialise one HTTP/1.0 response that closes the connection."""
    head = (
        f"HTTP/1.0 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")
    return head + body if include_body else head


def _plain(status: int, text: str, *, include_body: bool = True) -> bytes:
    return response(
        status, text.encode("ascii"), "text/plain; charset=utf-8", include_body=include_body
    )


def respond(data: bytes, render: Render) -> bytes:
    """Answer the request whose head starts ``data``; ``render()`` makes the exposition.

    ``render`` is called only for a metrics request, and what it raises
    propagates (the caller owns the 500 and the log line).
    """
    if len(data) > MAX_HEAD and END_OF_HEAD not in data[: MAX_HEAD + len(END_OF_HEAD)]:
        return _plain(431, "request head too large\n")
    request_line = data.split(b"\n", 1)[0].rstrip(b"\r")
    parts = request_line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        return _plain(400, "bad request\n")
    method, target = parts[0], parts[1]
    path = target.split(b"?", 1)[0]
    if path not in (b"/metrics", b"/", b"/healthz"):
        return _plain(404, "not found\n")
    if method not in (b"GET", b"HEAD"):
        return _plain(405, "method not allowed\n")
    include_body = method == b"GET"
    if path == b"/metrics":
        body, content_type = render()
        return response(200, body, content_type, include_body=include_body)
    return _plain(200, "ok\n", include_body=include_body)

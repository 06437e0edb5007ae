"""The web console's files (spec/CONTROL.md: ``GET /`` on the API port is the web console).

Plain HTML, JavaScript and CSS in ``actors/httpapi/console/``, shipped as
package data (setup.cfg) and read once when the server starts: they are a
few kilobytes, and serving them from memory keeps a page load to one quick
answer per file. Only the files found there are served, by their bare
names; nothing is looked up on disk per request, so no request path can
reach another file.

Every answer carries a Content-Security-Policy that lets the page load its
own script and style and talk to this origin only (no inline script, no
framing), and an ETag, so a reload revalidates with a 304.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

__all__ = ["INDEX", "ConsoleFile", "HEADERS", "load"]

INDEX = "index.html"

MEDIA = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class ConsoleFile:
    body: bytes
    media: str
    etag: str


def load() -> dict[str, ConsoleFile]:
    """Every file of the console folder by name; files of unknown types are left out."""
    folder = resources.files("actors.httpapi").joinpath("console")
    found: dict[str, ConsoleFile] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in MEDIA:
            body = entry.read_bytes()
            found[entry.name] = ConsoleFile(body, MEDIA[suffix], '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    return found

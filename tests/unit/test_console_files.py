"""The web console's files (actors/httpapi/console): what the server loads, and what the package ships."""

from __future__ import annotations

import configparser
import fnmatch
import re
from pathlib import Path

from actors.httpapi import console
from actors.httpapi.openapi import document

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "actors" / "httpapi" / "console"


def test_the_server_loads_the_page_its_scripts_and_its_style_with_their_media_types() -> None:
    files = console.load()
    assert {name: f.media for name, f in files.items()} == {
        "index.html": "text/html", "app.css": "text/css",
        **{path.name: "text/javascript" for path in FOLDER.glob("*.js")}}
    assert "app.js" in files and all(f.etag.startswith('"') and f.body for f in files.values())


def test_every_module_the_scripts_import_is_a_file_of_the_console_and_exports_what_is_imported() -> None:
    for path in FOLDER.glob("*.js"):
        for names, module in re.findall(r'^import \{([^}]*)\} from "\./([\w.]+)";$', path.read_text(), re.M):
            assert (FOLDER / module).is_file(), f"{path.name} imports {module}"
            exported = set(re.findall(r"^export (?:async )?(?:function|const|let|class) ([\w$]+)",
                                      (FOLDER / module).read_text(), re.M))
            missing = {name.strip() for name in names.split(",")} - exported
            assert not missing, f"{path.name} imports {missing} from {module}"


def test_the_page_loads_only_files_the_server_has_and_nothing_from_another_origin() -> None:
    page = (FOLDER / "index.html").read_text()
    referenced = re.findall(r'(?:src|href)="([^"#]+)"', page)
    assert referenced, page
    for url in referenced:
        assert url.startswith("/console/") or url == "data:,", url
        if url.startswith("/console/"):
            assert url.removeprefix("/console/") in console.load(), url
    for path in FOLDER.glob("*.js"):
        script = path.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", script), f"{path.name} fetches elsewhere"
        assert not re.search(r"^import .* from \"(?!\./)", script, re.M), f"{path.name} imports from elsewhere"


def test_the_content_security_policy_allows_no_inline_script_and_no_other_origin() -> None:
    policy = console.HEADERS["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "connect-src 'self'" in policy
    assert "<script>" not in (FOLDER / "index.html").read_text()  # every script is a file the policy allows


def test_every_console_file_is_package_data_so_an_installed_package_serves_it() -> None:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    patterns = config["options.package_data"]["actors.httpapi"].split()
    for path in FOLDER.iterdir():
        relative = f"console/{path.name}"
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


def test_the_console_routes_are_in_the_openapi_document_as_html_and_without_a_key() -> None:
    operation = document()["paths"]["/"]["get"]
    assert operation["security"] == [] and "text/html" in operation["responses"]["200"]["content"]

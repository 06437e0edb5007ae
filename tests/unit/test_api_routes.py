"""The HTTP API's route table and the OpenAPI document generated from it (actors/httpapi)."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from actors import admin
from actors.httpapi import openapi
from actors.httpapi.routes import ROUTES, Param, Route

DOCUMENT = openapi.document()


def test_the_generated_document_is_valid_openapi_3() -> None:
    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.")


def test_every_route_of_the_table_is_in_the_document_with_its_method_and_nothing_else_is() -> None:
    documented = {(method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item}
    assert documented == {(r.method, r.path) for r in ROUTES}
    assert len({(r.method, r.path) for r in ROUTES}) == len(ROUTES)
    assert len({r.operation for r in ROUTES}) == len(ROUTES)


def test_a_route_added_to_the_table_appears_in_the_document_with_its_parameters_and_scope() -> None:
    extra = Route("GET", "/api/v1/things/{thing}", "showThing", "a thing", "read", "Status", command="status",
                  params=(Param("thing", "path", {"type": "integer"}, "which"),
                          Param("fresh", "query", {"type": "boolean"}, "only fresh ones")))
    operation = openapi.document((*ROUTES, extra))["paths"]["/api/v1/things/{thing}"]["get"]
    assert operation["operationId"] == "showThing" and operation["x-scope"] == "read"
    assert [(p["name"], p["in"], p["required"]) for p in operation["parameters"]] == [
        ("thing", "path", True), ("fresh", "query", False)]
    assert operation["security"] == [{"bearer": []}]
    assert {"200", "401", "403"} <= set(operation["responses"])


def test_only_the_health_checks_the_document_and_the_console_files_need_no_key() -> None:
    open_routes = {(r.method, r.path) for r in ROUTES if r.scope is None}
    assert open_routes == {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/api/v1/openapi.json"),
                           ("GET", "/"), ("GET", "/console/{asset}")}
    assert {r.kind for r in ROUTES if r.path in ("/", "/console/{asset}")} == {"console"}
    for method, path in open_routes:
        assert DOCUMENT["paths"][path][method.lower()]["security"] == []


def test_read_keys_may_only_get_operate_sends_ocpp_and_admin_changes_things() -> None:
    for route in ROUTES:
        if route.method != "GET":
            assert route.scope == ("operate" if route.kind == "call" else "admin"), route.path
        elif route.scope is not None:
            # The keys, and the audit log (who did what), are for admins.
            assert route.scope == ("admin" if "api-keys" in route.path or route.path == "/api/v1/audit" else "read"), route.path


def test_every_admin_route_runs_a_command_ctl_runs_and_names_its_arguments_as_it_does() -> None:
    for route in ROUTES:
        if route.kind == "admin":
            assert route.command in admin.COMMANDS, route.command
        else:
            assert route.kind in ("call", "openapi", "health", "ready", "events", "console"), route.kind
    by_operation = {r.operation: r for r in ROUTES}
    assert [p.argument for p in by_operation["showTransaction"].params] == ["id"]
    assert [p.argument for p in by_operation["listProfiles"].params] == ["station"]
    assert [p.argument for p in by_operation["listTransactions"].params] == ["station", "active"]


def test_every_path_parameter_is_declared_and_every_declared_one_is_in_the_path() -> None:
    for route in ROUTES:
        in_path = set(re.findall(r"{(\w+)}", route.path))
        assert in_path == {p.name for p in route.params if p.where == "path"}, route.path


def test_the_ocpp_request_route_answers_the_statuses_of_the_contract() -> None:
    [call] = [r for r in ROUTES if r.kind == "call"]
    assert (call.method, call.path) == ("POST", "/api/v1/stations/{id}/calls/{action}")
    responses = DOCUMENT["paths"][call.path]["post"]["responses"]
    assert {"200", "401", "403", "404", "409", "422", "504"} <= set(responses)
    assert responses["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CallAnswer"}

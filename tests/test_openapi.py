"""/openapi.json describes exactly the routes, methods and fields the app has."""

from __future__ import annotations

import re
from dataclasses import replace

from service import domain
from service.errors import InvalidInput
from service.openapi import build_openapi

HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


def app_routes(app) -> dict[str, set[str]]:
    """{uri template: responder methods} of the app's router."""
    routes: dict[str, set[str]] = {}

    def walk(nodes):
        for node in nodes:
            if node.resource is not None:
                methods = {
                    name.removeprefix("on_")
                    for name in dir(node.resource)
                    if name.startswith("on_") and name.removeprefix("on_") in HTTP_METHODS
                }
                routes[node.uri_template] = methods
            walk(node.children)

    walk(app._router._roots)
    return routes


def test_document_is_openapi_31_and_lists_every_route_and_method(client):
    result = client.simulate_get("/openapi.json")
    assert result.status_code == 200
    document = result.json
    assert document["openapi"].startswith("3.1")
    documented = {
        path: {m for m in operations if m in HTTP_METHODS}
        for path, operations in document["paths"].items()
    }
    actual = app_routes(client.app.app)
    actual.pop("/openapi.json")  # the document need not list itself
    assert documented == actual


def test_every_reference_resolves(client):
    document = client.simulate_get("/openapi.json").json
    text = client.simulate_get("/openapi.json").text
    for ref in set(re.findall(r'"\$ref":"#/([^"]+)"', text)):
        node = document
        for part in ref.split("/"):
            node = node[part]


def test_fields_match_the_paste_the_api_returns(client, create):
    document = client.simulate_get("/openapi.json").json
    schemas = document["components"]["schemas"]
    created = create("x")
    assert set(created) == set(schemas["CreatedPaste"]["properties"])
    full = client.simulate_get(f"/api/v1/pastes/{created['id']}").json
    assert set(full) == set(schemas["Paste"]["properties"])
    assert set(schemas["PasteCreate"]["properties"]) == domain.PASTE_FIELDS
    assert schemas["PasteCreate"]["additionalProperties"] is False


def test_every_error_status_of_the_contract_is_documented(client):
    paths = client.simulate_get("/openapi.json").json["paths"]
    assert {"400", "413", "415", "422", "503"} <= set(paths["/api/v1/pastes"]["post"]["responses"])
    assert {"401", "403", "404"} <= set(paths["/api/v1/pastes/{paste_id}"]["delete"]["responses"])
    assert {"304", "404"} <= set(paths["/api/v1/pastes/{paste_id}/raw"]["get"]["responses"])
    assert {"400", "422"} <= set(paths["/api/v1/pastes"]["get"]["responses"])


def test_the_document_follows_the_limits_the_validation_uses(config, monkeypatch):
    """Limits come from the same constants and settings as the rules, so a
    changed limit shows in the document and in what is refused alike."""
    monkeypatch.setattr(domain, "TITLE_MAX_CHARS", 7)
    monkeypatch.setattr(domain, "MAX_VIEWS_LIMIT", 9)
    small = replace(config, paste_max_bytes=1234, paste_max_ttl=60)
    document = build_openapi(small)
    create = document["components"]["schemas"]["PasteCreate"]["properties"]
    assert create["title"]["maxLength"] == 7
    assert create["max_views"]["maximum"] == 9
    assert create["expires_in"]["maximum"] == 60
    assert "1234 bytes" in create["content"]["description"]
    for fields, ok in (
        ({"title": "t" * 7}, True),
        ({"title": "t" * 8}, False),
        ({"max_views": 9}, True),
        ({"max_views": 10}, False),
    ):
        try:
            domain.validate_new_paste({"content": "x", **fields}, max_bytes=1234, max_ttl=60)
        except InvalidInput:
            assert not ok, fields
        else:
            assert ok, fields


def test_patterns_are_the_validations_own(client):
    document = client.simulate_get("/openapi.json").json
    schemas = document["components"]["schemas"]
    assert schemas["PasteMetadata"]["properties"]["id"]["pattern"] == (
        f"^{domain.ID_PATTERN.pattern}$"
    )
    form = schemas["PasteForm"]["properties"]
    assert re.fullmatch(form["expires_in"]["pattern"], "15m")
    assert not re.fullmatch(form["expires_in"]["pattern"], "1.5h")
    language = schemas["PasteCreate"]["properties"]["language"]["pattern"]
    assert language == f"^{domain.LANGUAGE_PATTERN.pattern}$"

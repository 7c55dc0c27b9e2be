"""/openapi.json describes exactly the routes, methods and fields the app has."""

from __future__ import annotations

import re

from service import domain

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

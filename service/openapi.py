"""The OpenAPI 3.1 description of the HTTP API, served at /openapi.json.

It is built from the same limits the service enforces, so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

from service import domain
from service.config import Config

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problem_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": PROBLEM}},
    }
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "string"},
    }
}
_CACHE_CONTROL = {
    "Cache-Control": {
        "description": (
            "`no-store` for burn-after-read pastes; otherwise `public, max-age=N`, "
            "N at most the seconds the paste has left and at most 3600."
        ),
        "schema": {"type": "string"},
    }
}


def build_openapi(config: Config) -> dict[str, Any]:
    """The document for a service running with `config`'s limits."""
    max_bytes = config.paste_max_bytes
    no_nul = "^[^\\u0000]*$"  # NUL is refused in every text field
    responses = {
        "BadRequest": _problem_response(
            "The request cannot be parsed: malformed JSON, a body that is not UTF-8, "
            "a malformed cursor."
        ),
        "NotFound": _problem_response(
            "No such live paste: it never existed, was deleted, burned or has expired."
        ),
        "Unprocessable": _problem_response(
            "A parsed request breaks the rules: unknown or wrong-typed fields, "
            "out-of-range or empty values, NUL in a text field."
        ),
        "RateLimited": _problem_response(
            "Too many requests from this client (creates, or lookups that found "
            "nothing); try again after Retry-After seconds.",
            _RETRY_AFTER,
        ),
        "Unavailable": _problem_response(
            "The database is unreachable or busy; try again after Retry-After seconds.",
            _RETRY_AFTER,
        ),
    }
    paste_id = {
        "name": "paste_id",
        "in": "path",
        "required": True,
        "description": "The paste's id (case-sensitive).",
        "schema": {"type": "string"},
    }
    metadata_properties: dict[str, Any] = {
        "id": {"type": "string", "pattern": "^[A-Za-z0-9]{11,64}$"},
        "title": {"type": ["string", "null"], "maxLength": domain.TITLE_MAX_CHARS},
        "language": {
            "type": ["string", "null"],
            "pattern": "^[A-Za-z0-9+#._-]{1,50}$",
        },
        "visibility": {"type": "string", "enum": list(domain.VISIBILITIES)},
        "burn_after_read": {"type": "boolean"},
        "size": {"type": "integer", "minimum": 1, "maximum": max_bytes},
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": ["string", "null"], "format": "date-time"},
        "url": {"type": "string", "format": "uri"},
        "raw_url": {"type": "string", "format": "uri"},
    }
    metadata_required = list(metadata_properties)
    schemas: dict[str, Any] = {
        "Problem": {
            "type": "object",
            "description": "An RFC 9457 problem document.",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "field": {"type": "string", "description": "The offending field, for 422."},
            },
        },
        "PasteCreate": {
            "type": "object",
            "additionalProperties": False,
            "required": ["content"],
            "properties": {
                "content": {
                    "type": "string",
                    "minLength": 1,
                    "pattern": no_nul,
                    "description": (
                        f"UTF-8 text, 1 to {max_bytes} bytes; no NUL. Kept byte for byte."
                    ),
                },
                "title": {
                    "type": ["string", "null"],
                    "minLength": 1,
                    "maxLength": domain.TITLE_MAX_CHARS,
                    "pattern": no_nul,
                },
                "language": {
                    "type": ["string", "null"],
                    "pattern": "^[A-Za-z0-9+#._-]{1,50}$",
                },
                "visibility": {
                    "type": ["string", "null"],
                    "enum": [*domain.VISIBILITIES, None],
                    "default": "unlisted",
                },
                "burn_after_read": {"type": ["boolean", "null"], "default": False},
                "expires_in": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "maximum": config.paste_max_ttl,
                    "description": "Seconds until the paste expires; null or absent: never.",
                },
            },
        },
        "PasteMetadata": {
            "type": "object",
            "required": metadata_required,
            "properties": metadata_properties,
        },
        "Paste": {
            "type": "object",
            "required": [*metadata_required, "content"],
            "properties": {**metadata_properties, "content": {"type": "string"}},
        },
        "CreatedPaste": {
            "type": "object",
            "required": [*metadata_required, "delete_token"],
            "properties": {
                **metadata_properties,
                "delete_token": {
                    "type": "string",
                    "description": "Shown only here: send as `Authorization: Bearer <token>`.",
                },
            },
        },
        "PasteList": {
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/PasteMetadata"}},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
    }
    query_field = {
        "expires_in": {"type": "integer", "minimum": 1, "maximum": config.paste_max_ttl},
        "title": {
            "type": "string",
            "minLength": 1,
            "maxLength": domain.TITLE_MAX_CHARS,
            "pattern": no_nul,
        },
        "language": {"type": "string", "pattern": "^[A-Za-z0-9+#._-]{1,50}$"},
        "visibility": {"type": "string", "enum": list(domain.VISIBILITIES)},
        "burn_after_read": {"type": "boolean"},
    }
    create = {
        "summary": "Create a paste",
        "operationId": "createPaste",
        "description": (
            "A JSON body carries the fields; a text/plain body is the content and the "
            "other fields come from the query string. With JSON, fields may come from the "
            "query string too, but a field given in both is refused (422)."
        ),
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": "The field's value, as text (never also in a JSON body).",
                "schema": schema,
            }
            for name, schema in query_field.items()
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PasteCreate"}},
                "text/plain": {"schema": {"type": "string", "minLength": 1, "pattern": no_nul}},
            },
        },
        "responses": {
            "201": {
                "description": (
                    "Created. With `Accept: text/plain` the body is the raw URL and a "
                    "newline, and the delete token is in X-Delete-Token."
                ),
                "headers": {
                    "Location": {"schema": {"type": "string", "format": "uri"}},
                    "X-Delete-Token": {
                        "description": "With `Accept: text/plain` only.",
                        "schema": {"type": "string"},
                    },
                },
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/CreatedPaste"}},
                    "text/plain": {"schema": {"type": "string"}},
                },
                "links": {
                    "ReadPaste": {
                        "operationId": "readPaste",
                        "parameters": {"paste_id": "$response.body#/id"},
                    },
                    "ReadRawPaste": {
                        "operationId": "readRawPaste",
                        "parameters": {"paste_id": "$response.body#/id"},
                    },
                    "DeletePaste": {
                        "operationId": "deletePaste",
                        "parameters": {"paste_id": "$response.body#/id"},
                    },
                },
            },
            "400": {"$ref": "#/components/responses/BadRequest"},
            "413": _problem_response(
                f"Content over {max_bytes} bytes, or a body over the body limit."
            ),
            "415": _problem_response(
                "The body is neither application/json nor text/plain, or not UTF-8."
            ),
            "422": {"$ref": "#/components/responses/Unprocessable"},
            "429": {"$ref": "#/components/responses/RateLimited"},
            "503": {"$ref": "#/components/responses/Unavailable"},
        },
    }
    list_public = {
        "summary": "List public pastes, newest first",
        "operationId": "listPastes",
        "parameters": [
            {
                "name": "limit",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
            {
                "name": "cursor",
                "in": "query",
                "description": (
                    "An opaque cursor: the previous page's next_cursor. "
                    "Anything this service did not issue is a 400."
                ),
                "schema": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_-]+$"},
            },
        ],
        "responses": {
            "200": {
                "description": "A page of live public pastes (no content).",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PasteList"}}
                },
            },
            "400": {"$ref": "#/components/responses/BadRequest"},
            "422": {"$ref": "#/components/responses/Unprocessable"},
            "503": {"$ref": "#/components/responses/Unavailable"},
        },
    }
    read_headers = {**_CACHE_CONTROL}
    read = {
        "summary": "Read a paste as JSON (burns a burn-after-read paste)",
        "operationId": "readPaste",
        "parameters": [paste_id],
        "responses": {
            "200": {
                "description": "The paste, content included.",
                "headers": read_headers,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Paste"}}},
            },
            "404": {"$ref": "#/components/responses/NotFound"},
            "429": {"$ref": "#/components/responses/RateLimited"},
            "503": {"$ref": "#/components/responses/Unavailable"},
        },
    }
    head: dict[str, Any] = {
        "summary": "Headers of a read, without a body; never burns",
        "parameters": [paste_id],
        "responses": {
            "200": {"description": "The paste exists.", "headers": read_headers},
            "404": {"description": "No such live paste."},
            "429": {"description": "Too many lookups that found nothing.", "headers": _RETRY_AFTER},
            "503": {"description": "The database is unavailable.", "headers": _RETRY_AFTER},
        },
    }
    head_raw = {
        **head,
        "responses": {
            **head["responses"],
            "304": {"description": "Not modified: If-None-Match matched the ETag."},
        },
    }
    raw = {
        "summary": "Read a paste's content alone (burns a burn-after-read paste)",
        "operationId": "readRawPaste",
        "parameters": [
            paste_id,
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "Ignored for burn-after-read pastes.",
                "schema": {"type": "string"},
            },
        ],
        "responses": {
            "200": {
                "description": "The exact content.",
                "headers": {
                    **read_headers,
                    "ETag": {"description": "A strong ETag.", "schema": {"type": "string"}},
                },
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "304": {"description": "Not modified: If-None-Match matched the ETag."},
            "404": {"$ref": "#/components/responses/NotFound"},
            "429": {"$ref": "#/components/responses/RateLimited"},
            "503": {"$ref": "#/components/responses/Unavailable"},
        },
    }
    delete = {
        "summary": "Delete a paste with its delete token",
        "operationId": "deletePaste",
        "parameters": [paste_id],
        "security": [{"deleteToken": []}],
        "responses": {
            "204": {"description": "Deleted."},
            "401": _problem_response(
                "No bearer token (checked before anything else).",
                {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}},
            ),
            "403": _problem_response("The token does not match."),
            "404": {"$ref": "#/components/responses/NotFound"},
            "429": {"$ref": "#/components/responses/RateLimited"},
            "503": {"$ref": "#/components/responses/Unavailable"},
        },
    }
    plain_ok = {
        "description": "OK",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pastebin API",
            "version": "1.0.0",
            "description": (
                "Store text, get a short link back. Every error is an RFC 9457 problem "
                "document (application/problem+json). Unknown routes are 404; a method "
                "a route does not allow is 405 with an Allow header."
            ),
        },
        "paths": {
            "/api/v1/pastes": {"post": create, "get": list_public},
            "/api/v1/pastes/{paste_id}": {"get": read, "head": head, "delete": delete},
            "/api/v1/pastes/{paste_id}/raw": {"get": raw, "head": head_raw},
            "/healthz": {"get": {"summary": "The process is up", "responses": {"200": plain_ok}}},
            "/readyz": {
                "get": {
                    "summary": "The database answers",
                    "responses": {
                        "200": plain_ok,
                        "503": {"$ref": "#/components/responses/Unavailable"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": schemas,
            "responses": responses,
            "securitySchemes": {"deleteToken": {"type": "http", "scheme": "bearer"}},
        },
    }

"""The OpenAPI 3.1 description of the HTTP API, served at /openapi.json.

Every limit and pattern in it comes from the constants and settings the
validation uses (`service.domain`, `Config`), so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

from service import domain
from service.config import Config
from service.httpheaders import MAX_CACHE_SECONDS

JSON = "application/json"
PROBLEM = {"$ref": "#/components/schemas/Problem"}
NO_NUL = "^[^\\u0000]*$"
TITLE = "^[^\\u0000-\\u0008\\u000a-\\u001f]*$"  # domain.TITLE_CONTROLS, negated


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _anchored(pattern: str) -> str:
    return f"^{pattern}$"


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
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
_BASIC_CHALLENGE = {
    "WWW-Authenticate": {
        "schema": {"type": "string", "const": 'Basic realm="paste", charset="UTF-8"'}
    }
}
_CACHE_CONTROL = {
    "Cache-Control": {
        "description": (
            "`no-store` for a paste with a view limit or a password; otherwise "
            f"`public, max-age=N`, N at most the seconds it has left and at most "
            f"{MAX_CACHE_SECONDS}."
        ),
        "schema": {"type": "string"},
    }
}


def _responses() -> dict[str, Any]:
    return {
        "BadRequest": _problem(
            "The request cannot be parsed: malformed JSON, a body that is not UTF-8, "
            "a malformed form or cursor."
        ),
        "NotFound": _problem(
            "No such live paste: it never existed, was deleted, burned, used up its "
            "views or has expired."
        ),
        "Unprocessable": _problem(
            "A parsed request breaks the rules: unknown or wrong-typed fields, "
            "out-of-range or empty values, NUL in a text field."
        ),
        "PasswordRequired": _problem(
            "The paste is protected: send its password with HTTP Basic (any user name). "
            "A wrong one counts against the client's miss limit.",
            _BASIC_CHALLENGE,
        ),
        "Removed": _problem("Removed by the operator; `detail` gives the reason."),
        "RateLimited": _problem(
            "Too many requests from this client (creates, reports, lookups that found "
            "nothing, wrong passwords); try again after Retry-After seconds.",
            _RETRY_AFTER,
        ),
        "Unavailable": _problem(
            "The database is unreachable or busy; try again after Retry-After seconds.",
            _RETRY_AFTER,
        ),
    }


def _field_schemas(config: Config) -> dict[str, dict[str, Any]]:
    """The create fields other than `content`, as their typed values."""
    return {
        "title": {
            "type": "string",
            "minLength": 1,
            "maxLength": domain.TITLE_MAX_CHARS,
            "pattern": TITLE,
            "description": "No control characters but tab.",
        },
        "language": {"type": "string", "pattern": _anchored(domain.LANGUAGE_PATTERN.pattern)},
        "visibility": {"type": "string", "enum": list(domain.VISIBILITIES), "default": "unlisted"},
        "burn_after_read": {
            "type": "boolean",
            "default": False,
            "description": "The same as max_views 1.",
        },
        "max_views": {
            "type": "integer",
            "minimum": 1,
            "maximum": domain.MAX_VIEWS_LIMIT,
            "description": "Reads (GET) that return the content; the last one deletes the "
            "paste. Absent: unlimited.",
        },
        "password": {
            "type": "string",
            "minLength": 1,
            "maxLength": domain.PASSWORD_MAX_CHARS,
            "pattern": NO_NUL,
            "writeOnly": True,
            "description": "Readers must send it with HTTP Basic; stored only as a slow hash.",
        },
        "expires_in": {
            "type": "integer",
            "minimum": 1,
            "maximum": config.paste_max_ttl,
            "description": "Whole seconds until the paste expires; absent: never.",
        },
    }


def _as_text(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A field's schema as it is written in a query string or a form part."""
    if name == "expires_in":
        units = ", ".join(
            f"{unit} ({seconds} s)" for unit, seconds in domain.DURATION_UNITS.items()
        )
        return {
            "type": "string",
            "pattern": _anchored(domain.DURATION_PATTERN.pattern),
            "description": f"Whole seconds, or a whole number with a unit: {units}; "
            f"at most {schema['maximum']} seconds.",
        }
    if schema["type"] == "integer":
        return {"type": "string", "pattern": "^[0-9]{1,18}$", "description": schema["description"]}
    if schema["type"] == "boolean":
        return {"type": "string", "enum": ["true", "false", "1", "0"]}
    return {key: value for key, value in schema.items() if key != "default"}


def _schemas(config: Config) -> dict[str, Any]:
    max_bytes = config.paste_max_bytes
    fields = _field_schemas(config)
    content = {
        "type": "string",
        "minLength": 1,
        "pattern": NO_NUL,
        "description": f"UTF-8 text, 1 to {max_bytes} bytes; no NUL. Kept byte for byte.",
    }
    # In JSON, null for an optional field means its default.
    nullable = {
        name: {**schema, "type": [schema["type"], "null"]} for name, schema in fields.items()
    }
    nullable["visibility"]["enum"] = [*domain.VISIBILITIES, None]
    metadata: dict[str, Any] = {
        "id": {"type": "string", "pattern": _anchored(domain.ID_PATTERN.pattern)},
        "title": {"type": ["string", "null"], "maxLength": domain.TITLE_MAX_CHARS},
        "language": nullable["language"],
        "visibility": fields["visibility"],
        "burn_after_read": {"type": "boolean", "description": "True exactly when max_views is 1."},
        "max_views": {**nullable["max_views"], "description": "Null: unlimited."},
        "views_left": {
            "type": ["integer", "null"],
            "minimum": 0,
            "maximum": domain.MAX_VIEWS_LIMIT,
            "description": "Reads left after this one; null when unlimited.",
        },
        "password_protected": {"type": "boolean"},
        "size": {"type": "integer", "minimum": 1, "maximum": max_bytes},
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": ["string", "null"], "format": "date-time"},
        "url": {"type": "string", "format": "uri"},
        "raw_url": {"type": "string", "format": "uri"},
    }
    required = list(metadata)
    return {
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
            "properties": {"content": content, **nullable},
        },
        "PasteForm": {
            "type": "object",
            "additionalProperties": False,
            "required": ["content"],
            "description": "Parts of a multipart/form-data create: `content` (a file or a "
            "plain field) and any other field, each once and non-empty.",
            "properties": {
                "content": {**content, "contentMediaType": "text/plain"},
                **{name: _as_text(name, schema) for name, schema in fields.items()},
            },
        },
        "PasteMetadata": {"type": "object", "required": required, "properties": metadata},
        "Paste": {
            "type": "object",
            "required": [*required, "content"],
            "properties": {**metadata, "content": {"type": "string"}},
        },
        "CreatedPaste": {
            "type": "object",
            "required": [*required, "delete_token"],
            "properties": {
                **metadata,
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
                "items": {"type": "array", "items": _ref("schemas", "PasteMetadata")},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
        "Report": {
            "type": "object",
            "additionalProperties": False,
            "required": ["reason"],
            "properties": {
                "reason": {"type": "string", "enum": list(domain.REPORT_REASONS)},
                "detail": {
                    "type": ["string", "null"],
                    "maxLength": domain.REPORT_DETAIL_MAX_CHARS,
                    "pattern": NO_NUL,
                },
            },
        },
    }


def _create(config: Config) -> dict[str, Any]:
    max_bytes = config.paste_max_bytes
    return {
        "summary": "Create a paste",
        "operationId": "createPaste",
        "description": (
            "A JSON body carries the fields; a text/plain body is the content; a "
            "multipart/form-data body has a `content` part and may have the others. The "
            "other fields may also come from the query string, but a field given in both "
            "is refused (422)."
        ),
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": "The field's value, as text (never also in the body).",
                "schema": _as_text(name, schema),
            }
            for name, schema in _field_schemas(config).items()
        ],
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": _ref("schemas", "PasteCreate")},
                "text/plain": {"schema": {"type": "string", "minLength": 1, "pattern": NO_NUL}},
                "multipart/form-data": {"schema": _ref("schemas", "PasteForm")},
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
                    JSON: {"schema": _ref("schemas", "CreatedPaste")},
                    "text/plain": {"schema": {"type": "string"}},
                },
                "links": {
                    name: {
                        "operationId": operation,
                        "parameters": {"paste_id": "$response.body#/id"},
                    }
                    for name, operation in (
                        ("ReadPaste", "readPaste"),
                        ("ReadRawPaste", "readRawPaste"),
                        ("DeletePaste", "deletePaste"),
                    )
                },
            },
            "400": _ref("responses", "BadRequest"),
            "413": _problem(f"Content over {max_bytes} bytes, or a body over the body limit."),
            "415": _problem(
                "The body is not application/json, text/plain or multipart/form-data, or not UTF-8."
            ),
            "422": _ref("responses", "Unprocessable"),
            "429": _ref("responses", "RateLimited"),
            "451": _problem("The content is on the operator's blocklist; nothing was stored."),
            "503": _ref("responses", "Unavailable"),
        },
    }


def _list() -> dict[str, Any]:
    return {
        "summary": "List public pastes, newest first",
        "operationId": "listPastes",
        "parameters": [
            {
                "name": "limit",
                "in": "query",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": domain.LIST_LIMIT_MAX,
                    "default": domain.LIST_LIMIT_DEFAULT,
                },
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
                "description": "A page of live public pastes without a view limit or a "
                "password (no content).",
                "content": {JSON: {"schema": _ref("schemas", "PasteList")}},
            },
            "400": _ref("responses", "BadRequest"),
            "422": _ref("responses", "Unprocessable"),
            "503": _ref("responses", "Unavailable"),
        },
    }


_PASTE_ID = {
    "name": "paste_id",
    "in": "path",
    "required": True,
    "description": "The paste's id (case-sensitive).",
    "schema": {"type": "string"},
}
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "Ignored for a paste with a view limit.",
    "schema": {"type": "string"},
}
_READ_SECURITY: list[dict[str, list[str]]] = [{}, {"pastePassword": []}]
_READ_ERRORS = {
    "401": _ref("responses", "PasswordRequired"),
    "404": _ref("responses", "NotFound"),
    "429": _ref("responses", "RateLimited"),
    "451": _ref("responses", "Removed"),
    "503": _ref("responses", "Unavailable"),
}


def _reads() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """GET and HEAD of the JSON read and of the raw read."""
    read = {
        "summary": "Read a paste as JSON (takes a view of a paste with a view limit)",
        "operationId": "readPaste",
        "parameters": [_PASTE_ID],
        "security": _READ_SECURITY,
        "responses": {
            "200": {
                "description": "The paste, content included.",
                "headers": _CACHE_CONTROL,
                "content": {JSON: {"schema": _ref("schemas", "Paste")}},
            },
            **_READ_ERRORS,
        },
    }
    raw = {
        "summary": "Read a paste's content alone (takes a view of a paste with a view limit)",
        "operationId": "readRawPaste",
        "parameters": [_PASTE_ID, _IF_NONE_MATCH],
        "security": _READ_SECURITY,
        "responses": {
            "200": {
                "description": "The exact content.",
                "headers": {
                    **_CACHE_CONTROL,
                    "ETag": {"description": "A strong ETag.", "schema": {"type": "string"}},
                },
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "304": {"description": "Not modified: If-None-Match matched the ETag."},
            **_READ_ERRORS,
        },
    }
    head_responses = {
        "200": {"description": "The paste exists.", "headers": _CACHE_CONTROL},
        "401": {"description": "A password is needed.", "headers": _BASIC_CHALLENGE},
        "404": {"description": "No such live paste."},
        "429": {"description": "Too many misses.", "headers": _RETRY_AFTER},
        "451": {"description": "Removed by the operator."},
        "503": {"description": "The database is unavailable.", "headers": _RETRY_AFTER},
    }
    head = {
        "summary": "Headers of a read, without a body; never takes a view",
        "parameters": [_PASTE_ID],
        "security": _READ_SECURITY,
        "responses": head_responses,
    }
    head_raw = {
        **head,
        "parameters": [_PASTE_ID, _IF_NONE_MATCH],
        "responses": {
            **head_responses,
            "304": {"description": "Not modified: If-None-Match matched the ETag."},
        },
    }
    return read, head, raw, head_raw


def _delete() -> dict[str, Any]:
    return {
        "summary": "Delete a paste with its delete token",
        "operationId": "deletePaste",
        "parameters": [_PASTE_ID],
        "security": [{"deleteToken": []}],
        "responses": {
            "204": {"description": "Deleted."},
            "401": _problem(
                "No bearer token (checked before anything else).",
                {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}},
            ),
            "403": _problem("The token does not match (counts against the miss limit)."),
            "404": _ref("responses", "NotFound"),
            "429": _ref("responses", "RateLimited"),
            "503": _ref("responses", "Unavailable"),
        },
    }


def _report() -> dict[str, Any]:
    return {
        "summary": "Report a paste to the operator",
        "operationId": "reportPaste",
        "parameters": [_PASTE_ID],
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": _ref("schemas", "Report")}},
        },
        "responses": {
            "202": {
                "description": "Received; reading the paste is unaffected until an operator acts.",
                "content": {
                    JSON: {
                        "schema": {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"const": "received"}},
                        }
                    }
                },
            },
            "400": _ref("responses", "BadRequest"),
            "404": _ref("responses", "NotFound"),
            "413": _problem("The report is too large."),
            "415": _problem("The report is not application/json."),
            "422": _ref("responses", "Unprocessable"),
            "429": _ref("responses", "RateLimited"),
            "503": _ref("responses", "Unavailable"),
        },
    }


def _operational() -> dict[str, Any]:
    ok = {"description": "OK", "content": {JSON: {"schema": {"type": "object"}}}}
    text = {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
    return {
        "/": {"get": {"summary": "Usage, for people at a terminal", "responses": {"200": text}}},
        "/healthz": {"get": {"summary": "The process is up", "responses": {"200": ok}}},
        "/readyz": {
            "get": {
                "summary": "The database answers",
                "responses": {"200": ok, "503": _ref("responses", "Unavailable")},
            }
        },
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": text}}},
    }


def build_openapi(config: Config) -> dict[str, Any]:
    """The document for a service running with `config`'s limits."""
    read, head, raw, head_raw = _reads()
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
            "/api/v1/pastes": {"post": _create(config), "get": _list()},
            "/api/v1/pastes/{paste_id}": {"get": read, "head": head, "delete": _delete()},
            "/api/v1/pastes/{paste_id}/raw": {"get": raw, "head": head_raw},
            "/api/v1/pastes/{paste_id}/report": {"post": _report()},
            **_operational(),
        },
        "components": {
            "schemas": _schemas(config),
            "responses": _responses(),
            "securitySchemes": {
                "deleteToken": {"type": "http", "scheme": "bearer"},
                "pastePassword": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "Any user name; the password is the paste's.",
                },
            },
        },
    }

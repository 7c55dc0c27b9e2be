"""multipart/form-data bodies for tests, written out by hand as curl -F does."""

from __future__ import annotations

import secrets


def multipart(*parts: tuple[str, bytes | str, str | None]) -> tuple[bytes, str]:
    """(body, Content-Type) for parts of (name, value, filename or None)."""
    boundary = f"------------------------{secrets.token_hex(8)}"
    body = b""
    for name, value, filename in parts:
        data = value.encode() if isinstance(value, str) else value
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            body += b"Content-Type: application/octet-stream\r\n"
        body += b"\r\n" + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"

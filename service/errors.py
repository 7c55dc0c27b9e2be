"""The service's exceptions. Each docstring is its default message.

These are plain Python: the domain and service layers raise them, and
`service.problems` turns each into an RFC 9457 problem document.
"""

from __future__ import annotations


class ServiceError(Exception):
    """The request could not be served."""

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or (self.__doc__ or "").strip()
        super().__init__(self.detail)


class MalformedRequest(ServiceError):
    """The request could not be parsed."""


class MalformedCursor(MalformedRequest):
    """The cursor is not one this service issued."""


class InvalidInput(ServiceError):
    """The request breaks the rules for a paste."""

    def __init__(self, detail: str | None = None, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


class BodyTimeout(MalformedRequest):
    """The request body did not arrive in time."""


class UriTooLong(MalformedRequest):
    """The request line is longer than this service accepts."""


class HeadersTooLarge(MalformedRequest):
    """The request's headers are larger than this service accepts."""


class ContentTooLarge(ServiceError):
    """The content is larger than this service accepts."""


class UnsupportedMediaType(ServiceError):
    """Send the paste as application/json, text/plain or multipart/form-data, in UTF-8."""


class PasteNotFound(ServiceError):
    """No such paste: it never existed, was deleted, was burned or has expired."""


class PasteRemoved(ServiceError):
    """This paste was removed by the operator."""


class ContentBlocked(ServiceError):
    """This content may not be stored here."""


class PasswordRequired(ServiceError):
    """This paste is protected: send its password with HTTP Basic authentication."""


class WrongPassword(PasswordRequired):
    """The password does not match this paste."""


class MissingDeleteToken(ServiceError):
    """Send the paste's delete token as `Authorization: Bearer <token>`."""


class WrongDeleteToken(ServiceError):
    """The delete token does not match this paste."""


class DatabaseUnavailable(ServiceError):
    """The database is unavailable; try again shortly."""


class ConnectionLost(DatabaseUnavailable):
    """The connection to the database was lost; try again shortly."""


class DatabaseBusy(DatabaseUnavailable):
    """The database is too busy to answer in time; try again shortly."""


class ServerBusy(ServiceError):
    """The server is busy with other large requests; try again shortly."""


class RateLimited(ServiceError):
    """Too many requests from this client; try again later."""

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

"""The one family of errors both services raise, and the one table that gives each its status.

Every failure a client can see is one of these, with a message that names the problem and,
where there is one, the fix. Clients' faults are 4xx; a backend's or resource's fault is 5xx.
"""

from __future__ import annotations


class ApiError(Exception):
    """A failure with a message that names the problem; its status comes from STATUS."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def status(self) -> int:
        return next(STATUS[kind] for kind in type(self).__mro__ if kind in STATUS)


# The client's faults.
class BadRequest(ApiError):
    """A request that is not what the route takes (not a form, a missing field)."""


class Unauthorized(ApiError):
    """A missing or wrong key."""


class NotFound(ApiError):
    pass


class TooLarge(ApiError):
    """A body, image or text over a limit."""


class Invalid(ApiError):
    """Well-formed, but a value the route cannot use (bad entries, an unknown model name)."""


class Conflict(ApiError):
    """A request the resource's present state does not allow."""


class ImageEmpty(BadRequest):
    pass


class ImageUndecodable(Invalid):
    pass


class ImageTooLarge(TooLarge):
    pass


# Faults of the service or of what it depends on.
class Unavailable(ApiError):
    """Something needed is not there now (a model, the database, a setting); try again later."""


class Busy(Unavailable):
    """Every inference slot and its queue is taken."""


class ModelUnavailable(Unavailable):
    pass


class BackendUnreachable(Unavailable):
    pass


class BackendTimedOut(ApiError):
    pass


class BackendFailed(ApiError):
    """A backend answered with a server error or with something that is not its protocol."""


class Answered(ApiError):
    """Another server's own answer, passed back as it came: Immich refusing the caller's
    credentials, or a search it will not run."""

    def __init__(self, status: int, content: bytes, content_type: str | None) -> None:
        super().__init__(f"Immich answered {status}")
        self._status = status
        self.content = content
        self.content_type = content_type

    @property
    def status(self) -> int:
        return self._status


class Internal(ApiError):
    """A fault nobody foresaw; logged with its traceback."""


STATUS: dict[type[ApiError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    Invalid: 422,
    Internal: 500,
    BackendFailed: 502,
    Unavailable: 503,
    BackendTimedOut: 504,
}

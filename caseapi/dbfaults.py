"""A database that drops the connection mid-request gives a clean 503, never a 500 with a
traceback. The transaction that was open is rolled back by its `atomic` block (a failed
rollback closes the connection), and Django drops the broken connection at the end of the
request (`errors_occurred`), so the next request connects afresh. Between requests a
connection killed by the server is caught by CONN_HEALTH_CHECKS before it is used."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = (
    "The database connection failed; the request did not complete and its unfinished changes were rolled back. "
    "Retry shortly."
)
DATABASE_UNAVAILABLE_CODE = "database_unavailable"
RETRY_AFTER_SECONDS = 1


def is_database_unavailable(exc: BaseException) -> bool:
    """A lost or unusable connection, a server shutting down, a statement or lock timeout:
    errors a retry may cure (psycopg's OperationalError and InterfaceError, as Django wraps
    them). Integrity and programming errors are bugs and stay 500s."""
    return isinstance(exc, OperationalError | InterfaceError)


def log_database_unavailable(request: HttpRequest | None, exc: BaseException) -> None:
    path = request.path if request is not None else "?"
    logger.error("database unavailable during %s: %s: %s", path, exc.__class__.__name__, str(exc).strip())


class DatabaseUnavailableMiddleware:
    """The same 503 for views outside DRF (the admin, plain Django views): the API's error
    shape under /api/, plain text elsewhere. DRF views get it from
    caseapi.exceptions.exception_handler."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_unavailable(exception):
            return None
        log_database_unavailable(request, exception)
        if request.path_info.startswith("/api/"):
            response: HttpResponse = JsonResponse(
                {"detail": DATABASE_UNAVAILABLE, "code": DATABASE_UNAVAILABLE_CODE}, status=503
            )
        else:
            response = HttpResponse(
                f"Service Unavailable (503). {DATABASE_UNAVAILABLE}", status=503, content_type="text/plain"
            )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        return response

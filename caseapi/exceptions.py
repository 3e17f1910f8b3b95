"""One error shape for the API: `{"detail", "code"}`, or field errors `{"field": [...]}`.

Domain errors subclass DRF's APIException (status, default detail and code on the class), so
services raise them directly and management commands can print them. Django's own
ValidationError, Http404 and PermissionDenied are mapped here too, and a lost database
connection becomes a 503 with a reason (caseapi.dbfaults), never a 500.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from caseapi import dbfaults


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than allowed."
    default_code = "payload_too_large"


class Locked(exceptions.APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_detail = "This account is locked after repeated failed logins."
    default_code = "account_locked"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is temporarily unavailable; retry shortly."
    default_code = "service_unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database connection failed mid-request (caseapi.dbfaults): the request's transaction
    was rolled back, and the client may retry."""

    default_detail = dbfaults.DATABASE_UNAVAILABLE
    default_code = dbfaults.DATABASE_UNAVAILABLE_CODE


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        exc = exceptions.ParseError("The request has too many fields or files.")
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif dbfaults.is_database_unavailable(exc):
        dbfaults.log_database_unavailable(context.get("request"), exc)
        exc = DatabaseUnavailable()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, DatabaseUnavailable):
        response["Retry-After"] = str(dbfaults.RETRY_AFTER_SECONDS)
    if isinstance(exc, exceptions.APIException) and isinstance(response.data, dict):
        if set(response.data) == {"detail"}:
            detail = exc.detail
            response.data = {"detail": str(detail), "code": getattr(detail, "code", exc.default_code)}
    elif isinstance(response.data, list):
        response.data = {"non_field_errors": response.data}
    return response

"""Request rates of the endpoints a caller could use to exhaust the service (OWASP API4:2023).

Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope], read when each request is
checked (DRF's own throttles read them once, at import), with a default for a scope the
settings leave out. Counters live in the default cache: per process with the local-memory
cache, shared by every server with a shared one (Redis). A refused request is a 429 with
`Retry-After` in seconds.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from intercept.models import IngestSource

INGEST_RATE = "300/min"
INGEST_ADDRESS_RATE = "600/min"


class SettingsRateThrottle(SimpleRateThrottle):
    """A rate throttle whose rate is the settings' rate for `scope`, else `default_rate`."""

    default_rate: str | None = None

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope) or self.default_rate


class IngestSourceThrottle(SettingsRateThrottle):
    """Batches pushed per ingest source (`ingest` scope, INGEST_RATE by default), counted after
    the signature is checked: a source cannot spend another's allowance, and a request that
    is not a signed source's (already refused with 401) is not counted."""

    scope = "ingest"
    default_rate = INGEST_RATE

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, IngestSource):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class IngestAddressThrottle(SettingsRateThrottle):
    """Requests to the ingest routes per client address (`ingest_address` scope,
    INGEST_ADDRESS_RATE by default), counted before the signature is checked: every refused
    signature costs a database lookup and an audit row, so an unsigned flood is cut off here.
    Reads only the address (`REMOTE_ADDR`, or `X-Forwarded-For` per NUM_PROXIES), never the
    caller's identity."""

    scope = "ingest_address"
    default_rate = INGEST_ADDRESS_RATE

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ThrottleBeforeAuthenticationMixin:
    """For an APIView: runs `pre_authentication_throttle_classes` before the view authenticates the caller (DRF
    runs its throttles after), for routes where authenticating is itself the expensive,
    audited step."""

    pre_authentication_throttle_classes: list[type[BaseThrottle]] = []

    def perform_authentication(self, request: Request) -> None:
        for throttle_class in self.pre_authentication_throttle_classes:
            throttle = throttle_class()
            if not throttle.allow_request(request, self):
                self.throttled(request, throttle.wait())  # type: ignore[attr-defined]
        super().perform_authentication(request)  # type: ignore[misc]

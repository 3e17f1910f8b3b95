"""Page-number pagination with a hard cap on page_size (MAX_PAGE_SIZE). A page_size above the
cap is served at the cap; one that is not a whole number of at least 1 is refused with a 400
naming it (it is never silently replaced by the default); an empty one is the default."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

PAGE_SIZE_INVALID = "A page size is a whole number of at least 1."


class CappedPageNumberPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = settings.MAX_PAGE_SIZE

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size  # an empty value is no value, as for `page`
        try:
            size = int(raw.strip(), 10)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError({self.page_size_query_param: [PAGE_SIZE_INVALID]})
        return min(size, self.max_page_size)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["allowEmptyValue"] = True  # `page=` is page 1, `page_size=` the default
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = (
                    f"Results per page (default {self.page_size}; above {self.max_page_size}, "
                    f"{self.max_page_size}). 400 if it is not a whole number of at least 1."
                )
        return parameters

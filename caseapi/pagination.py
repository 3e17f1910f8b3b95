"""Page-number pagination with a hard cap on page_size (MAX_PAGE_SIZE)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import PageNumberPagination


class CappedPageNumberPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = settings.MAX_PAGE_SIZE

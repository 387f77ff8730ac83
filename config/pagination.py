"""The API's one pagination: limit/offset, with a ceiling so a huge `limit` is not sent to SQL."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 1000

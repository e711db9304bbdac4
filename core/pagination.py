"""Page-number pagination whose count stays cheap on large tables.

DRF's ``PageNumberPagination`` runs an exact ``SELECT COUNT(*)`` of the filtered queryset for
every page; at 100,000 LoRA rows on PostgreSQL that count costs more than the page itself (an
index scan of 100 rows). :class:`CappedCountPagination` counts at most ``count_cap`` rows
(``SELECT COUNT(*) FROM (<query> LIMIT cap + 1)``, which stops early), answers
``count: cap`` with ``count_exact: false`` past it ("10,000+" in a page), and counts exactly
only when a client asks for a page past the cap. Pages, ``next`` and ``previous`` behave as
DRF's (https://www.django-rest-framework.org/api-guide/pagination/#pagenumberpagination).
"""

from __future__ import annotations

from functools import cached_property

from django.conf import settings
from django.core.paginator import Paginator
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response


class CappedCountPaginator(Paginator):
    """A Django paginator whose ``count`` is exact up to ``cap`` rows and ``cap`` beyond.

    Args:
        cap: the most rows counted (>= 1). ``exact`` tells afterwards whether ``count`` is the
            true number of rows.
    """

    def __init__(self, *args, cap: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.cap = max(1, int(cap))
        self.exact = True

    @cached_property
    def count(self) -> int:
        """Rows in the list, at most ``cap`` (then ``exact`` is False)."""
        qs = self.object_list
        if not hasattr(qs, "query"):  # a plain list
            return len(qs)
        counted = qs.order_by()[: self.cap + 1].count()
        if counted > self.cap:
            self.exact = False
            return self.cap
        return counted

    def page(self, number):
        """The page ``number``; past a capped count the last page is not cut at the cap."""
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if self.exact and top + self.orphans >= self.count:
            top = self.count
        return self._get_page(self.object_list[bottom:top], number, self)

    def exact_count(self) -> int:
        """The true number of rows (one full ``COUNT(*)``); makes ``count`` exact from now."""
        if "count" not in self.__dict__ or not self.exact:
            qs = self.object_list
            self.__dict__["count"] = qs.count() if hasattr(qs, "query") else len(qs)
            self.__dict__.pop("num_pages", None)
            self.__dict__.pop("page_range", None)
            self.exact = True
        return self.count


class CappedCountPagination(PageNumberPagination):
    """``?page=`` / ``?page_size=`` pagination with a capped count.

    The response is DRF's ``{"count", "next", "previous", "results"}`` plus ``count_exact``
    (bool). ``count_cap`` defaults to ``settings.PAGINATION_COUNT_CAP`` (10,000).
    """

    count_cap: int | None = None

    def get_cap(self) -> int:
        return int(self.count_cap or getattr(settings, "PAGINATION_COUNT_CAP", 10_000))

    def django_paginator_class(self, object_list, per_page, *args, **kwargs):  # noqa: D102
        paginator = CappedCountPaginator(object_list, per_page, *args, cap=self.get_cap(),
                                         **kwargs)
        number = self.request.query_params.get(self.page_query_param) if self.request else None
        try:
            wanted = int(number) if number not in (None, "", "last") else 1
        except (TypeError, ValueError):
            wanted = 1
        # A page past the capped count (or "last") needs the true count to exist.
        if number == "last" or (wanted - 1) * per_page >= paginator.cap:
            paginator.exact_count()
        return paginator

    def get_next_link(self):  # noqa: D102
        page = self.page
        if not page.paginator.exact and page.number == page.paginator.num_pages:
            # The capped count ends here, the rows do not: the next page exists.
            from rest_framework.utils.urls import replace_query_param

            url = self.request.build_absolute_uri()
            return replace_query_param(url, self.page_query_param, page.number + 1)
        return super().get_next_link()

    def get_paginated_response(self, data):  # noqa: D102
        return Response({
            "count": self.page.paginator.count,
            "count_exact": self.page.paginator.exact,
            "next": self.get_next_link(),
            "previous": self.get_previous_link(),
            "results": data,
        })

    def get_paginated_response_schema(self, schema):  # noqa: D102
        result = super().get_paginated_response_schema(schema)
        result["properties"]["count_exact"] = {
            "type": "boolean",
            "description": "False when `count` is the cap (there are at least that many rows).",
        }
        result["required"] = [*result.get("required", []), "count_exact"]
        return result

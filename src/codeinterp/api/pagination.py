"""The list endpoints' query parameters (`limit`, `order`, `after`, `before`) as a store `PageQuery`."""

from collections.abc import Callable
from typing import Literal

from fastapi import Query

from codeinterp.store.pagination import PageQuery


class ListQuery(PageQuery):
    """Dependency for list endpoints: `query: ListQuery = Depends(ListQuery)` (default limit 20, at most 100).

    Endpoints with another default use `Depends(ListQuery.with_limits(default, maximum))`.
    """

    def __init__(self, limit: int = Query(20, ge=1, le=100), order: Literal["asc", "desc"] = Query("desc"),
                 after: str | None = Query(None), before: str | None = Query(None)) -> None:
        super().__init__(limit=limit, order=order, after=after, before=before)

    @classmethod
    def with_limits(cls, default: int, maximum: int) -> Callable[..., "ListQuery"]:
        def dependency(limit: int = Query(default, ge=1, le=maximum), order: Literal["asc", "desc"] = Query("desc"),
                       after: str | None = Query(None), before: str | None = Query(None)) -> ListQuery:
            return cls(limit=limit, order=order, after=after, before=before)

        return dependency

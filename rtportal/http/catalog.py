"""HTTP: a firm's catalogue of named types (matter types, document types), one shape.

Both catalogues answer the same three endpoints: list (any staff member),
create and patch (org admins: ``firm.manage``); clients and bots get
``not_found``, as for every staff endpoint. The capability module gives
the parsing, the rows and their bodies (``Catalog``); this module gives
the HTTP around them, once.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from rtportal.access import roles
from rtportal.http.context import db_of, ok, principal_of
from rtportal.http.directory import body_of, staff_only
from rtportal.http.errors import Endpoint, json_endpoint

__all__ = ["Catalog", "catalog_endpoints"]

RowT = TypeVar("RowT")
ChangeT = TypeVar("ChangeT")


class Catalog(Protocol[RowT, ChangeT]):
    """What a capability module gives (``rtportal.timeline.types``,
    ``rtportal.documents.types``)."""

    def parse_type(self, body: dict[str, Any], /, *, partial: bool) -> ChangeT: ...

    def type_body(self, row: RowT, /) -> dict[str, Any]: ...

    async def list_types(self, session: AsyncSession, firm_id: int, /) -> list[RowT]: ...

    async def create_type(
        self, session: AsyncSession, firm_id: int, change: ChangeT, /
    ) -> RowT: ...

    async def update_type(
        self, session: AsyncSession, firm_id: int, type_id: object, change: ChangeT, /
    ) -> RowT: ...


def catalog_endpoints(
    catalog: Catalog[RowT, ChangeT], name: str, plural: str, max_body: int
) -> tuple[Endpoint, Endpoint, Endpoint]:
    """``(list, create, patch)``: ``{plural: [...]}``, ``{name: {...}}`` (201) and
    ``{name: {...}}``; a patch's type is the path's ``id``."""

    @json_endpoint
    async def list_types(request: Request) -> Response:
        principal = await principal_of(request)
        staff_only(principal)
        async with db_of(request).read() as session:
            found = await catalog.list_types(session, principal.firm_id)
            return ok({plural: [catalog.type_body(row) for row in found]})

    @json_endpoint
    async def create_type(request: Request) -> Response:
        principal = await principal_of(request)
        roles.require(principal, "firm.manage")
        change = catalog.parse_type(await body_of(request, max_body), partial=False)
        async with db_of(request).write() as session:
            row = await catalog.create_type(session, principal.firm_id, change)
            body = catalog.type_body(row)
        return ok({name: body}, status=201)

    @json_endpoint
    async def patch_type(request: Request) -> Response:
        principal = await principal_of(request)
        roles.require(principal, "firm.manage")
        change = catalog.parse_type(await body_of(request, max_body), partial=True)
        type_id = request.path_params["id"]
        async with db_of(request).write() as session:
            row = await catalog.update_type(session, principal.firm_id, type_id, change)
            body = catalog.type_body(row)
        return ok({name: body})

    return list_types, create_type, patch_type

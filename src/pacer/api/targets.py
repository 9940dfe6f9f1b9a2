"""``/api/v1/targets``: the configured databases and what a metric job may measure on them.

The metadata answer is what a job editor needs to offer valid choices only: each table's
columns with the aggregations allowed on them, its time columns, and every period.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from pacer.api.app import ApiServices, services
from pacer.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode, encode, split
from pacer.domain.metrics import (
    AGGREGATIONS,
    PERIODS,
    Aggregation,
    ColumnInfo,
    Period,
    TableInfo,
    TargetMetadata,
)

router = APIRouter(prefix="/targets", tags=["targets"])
Services = Annotated[ApiServices, Depends(services)]


class TargetOut(BaseModel):
    name: str
    dialect: str


class ColumnOut(BaseModel):
    name: str
    #: As the database reports it (``REAL``, ``TEXT``, ``TIMESTAMP WITHOUT TIME ZONE``).
    type: str
    nullable: bool
    numeric: bool
    #: A date or timestamp, declared or (SQLite) ISO-8601 text: usable as ``time_column``.
    time: bool
    aggregations: list[Aggregation]

    @classmethod
    def of(cls, column: ColumnInfo) -> ColumnOut:
        return cls(
            name=column.name,
            type=column.type,
            nullable=column.nullable,
            numeric=column.numeric,
            time=column.time,
            aggregations=list(column.aggregations),
        )


class TableOut(BaseModel):
    name: str
    columns: list[ColumnOut]
    time_columns: list[str]

    @classmethod
    def of(cls, table: TableInfo) -> TableOut:
        columns = [ColumnOut.of(column) for column in table.columns]
        return cls(name=table.name, columns=columns, time_columns=table.time_columns)


class TargetMetadataOut(BaseModel):
    name: str
    dialect: str
    tables: list[TableOut]
    #: Every aggregation and period a metric job may name, for building forms.
    aggregations: list[Aggregation]
    periods: list[Period]

    @classmethod
    def of(cls, metadata: TargetMetadata) -> TargetMetadataOut:
        return cls(
            name=metadata.name,
            dialect=metadata.dialect,
            tables=[TableOut.of(table) for table in metadata.tables],
            aggregations=list(AGGREGATIONS),
            periods=list(PERIODS),
        )


@router.get("")
async def list_targets(
    api: Services, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[TargetOut]:
    """Targets by name, with their dialect; never their URL (it may hold a password)."""
    after = decode(cursor, 1)[0] if cursor is not None else None
    names = [name for name in api.catalog.names() if after is None or name > after]
    page, more = split(names, limit)
    items = [TargetOut(name=name, dialect=api.catalog.dialect(name)) for name in page]
    return Page[TargetOut](items=items, next_cursor=encode(page[-1]) if more else None)


@router.get("/{name}/metadata")
async def get_metadata(name: str, api: Services) -> TargetMetadataOut:
    """The target's tables and columns, read from the database (cached for a few seconds)."""
    return TargetMetadataOut.of(await api.catalog.describe(name))

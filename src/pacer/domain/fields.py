"""The field types of what Pacer takes from outside: each takes its own JSON type, never
another one converted.

pydantic's lax mode converts between types, and so the API took without a word: ``true`` or
``"2"`` for an integer (a consumer's position, a priority), ``true`` or ``"2.5"`` for a number,
``"yes"``, ``"off"`` or ``1`` for a boolean, and a number for a time or a date, read as
seconds since 1970 (``"as_of": 0`` became 1970-01-01, ``runs?until=0.5`` half a second after
it), even a number written as text, which is how every query parameter arrives. Each of these
is a client's mistake, made silent.

The rule is the published schema's (JSON Schema, in OpenAPI): an ``integer`` is a JSON number
without a fraction (``2.0`` counts, as JSON Schema says), a ``number`` is any JSON number, a
``boolean`` is ``true`` or ``false``, a time or a date is an ISO-8601 string. Python callers
(the decorator, TOML and YAML job files, the CLI) may also give ``datetime`` and ``date``
values. Query parameters, which are all text, have their own rule in ``pacer.api.queries``.

*Rejected:* ``strict=True`` on the models. FastAPI validates a body as the Python values its
JSON parses to, and in that mode strict pydantic refuses an ISO-8601 string for a time and a
string for an enum, which is all JSON can send for either.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Strict
from pydantic_core import PydanticCustomError

#: Text pydantic would read as seconds (or milliseconds) since 1970 where a time is expected.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def json_integer(value: Any) -> Any:
    """A ``BeforeValidator``: only a number goes on to pydantic's integer (which refuses a
    fraction), not a boolean (``True == 1`` in Python) nor text."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def iso_time(value: Any) -> Any:
    """A ``BeforeValidator`` for times: refuses a number, or text that is one, which pydantic
    would take for seconds since 1970; anything else goes on to pydantic's own parsing."""
    if _is_number(value):
        raise PydanticCustomError(
            "datetime_type",
            "Input should be an ISO-8601 time such as 2026-01-05T12:00:00+00:00, not a number",
        )
    return value


def iso_date(value: Any) -> Any:
    """A ``BeforeValidator`` for dates, as ``iso_time`` is for times."""
    if _is_number(value):
        raise PydanticCustomError(
            "date_type", "Input should be an ISO-8601 date such as 2026-01-05, not a number"
        )
    return value


def _is_number(value: Any) -> bool:
    if isinstance(value, str):
        return _NUMBER.fullmatch(value) is not None
    return isinstance(value, bool | int | float)


#: A whole number, from a JSON number only.
Integer = Annotated[int, BeforeValidator(json_integer)]
#: Any JSON number (an integer too), never text or a boolean.
Number = Annotated[float, Strict()]
#: ``true`` or ``false`` only.
Flag = Annotated[bool, Strict()]
#: A time as ISO-8601 text (or a ``datetime``); naive or aware as the field allows.
Instant = Annotated[datetime, BeforeValidator(iso_time)]
#: A date as ISO-8601 text (or a ``date``).
Day = Annotated[date, BeforeValidator(iso_date)]

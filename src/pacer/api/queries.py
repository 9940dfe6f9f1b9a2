"""What a numeric query parameter takes. Every query parameter arrives as text, so a number
must be text, but written as JSON writes one (``20``, ``0.5``, ``-1``, ``1e3``) and not as
Python also reads one (``1_000``, `` 5``, ``+5``, ``.5``, ``nan``): the same numbers the
schema promises, in a body or in a query. A time in a query is ISO-8601 text and never a
number, as in a body (``Moment``, ``domain/fields.py``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def json_number_text(value: Any) -> Any:
    """A ``BeforeValidator``: text that is a JSON number goes on to pydantic, other text is
    refused (a Python caller's number passes as it is)."""
    if isinstance(value, str) and _JSON_NUMBER.fullmatch(value) is None:
        raise PydanticCustomError("number_parsing", "Input should be a number written as in JSON")
    return value


#: An integer query parameter (``2.0`` counts, as JSON Schema says; ``2.5`` does not).
QueryInteger = Annotated[int, BeforeValidator(json_number_text)]
#: A number query parameter.
QueryNumber = Annotated[float, BeforeValidator(json_number_text)]

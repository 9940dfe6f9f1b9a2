"""Validating what was written before a rule existed.

A rule added to a spec (a job name that looks like an id, an interval under a second) refuses
new input, but a job stored before the rule must still load: one unloadable row would fail
every jobs list and stop the scheduler's whole tick. Stores validate with ``STORED`` as the
pydantic context, and the rules that came later skip themselves under it; what such a job
may still do is decided where it is used (an id lookup, the fire maths), not at load.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationInfo

#: The pydantic context stores pass when they read a spec back.
STORED: dict[str, Any] = {"stored": True}


def is_stored(info: ValidationInfo) -> bool:
    """Whether this validation reads a stored spec back (``STORED``) rather than new input."""
    return bool(info.context and info.context.get("stored"))

"""The actions by kind: what the services and the worker see of this package."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from pacer.actions.http import HttpActionRunner, HttpPoster
from pacer.actions.python import PythonActionRunner
from pacer.actions.sql import SqlActionRunner
from pacer.actions.targets import Targets
from pacer.domain.errors import InvalidInput
from pacer.ports import Action

__all__ = ["ActionRegistry"]


class ActionRegistry:
    """Dispatches on ``spec["kind"]``; turns pydantic errors into ``InvalidInput`` naming the
    field as ``action.<path>``, so every caller reports a bad spec the same way."""

    def __init__(self, actions: Mapping[str, Action]) -> None:
        self._actions = dict(actions)

    @classmethod
    def default(
        cls, targets: Targets, functions: Mapping[str, Callable[..., Any]]
    ) -> ActionRegistry:
        """The three built-in kinds; ``sql`` sinks and ``http`` share one HTTP client."""
        poster = HttpPoster()
        runners: list[Action] = [
            SqlActionRunner(targets, poster),
            HttpActionRunner(poster),
            PythonActionRunner(functions),
        ]
        return cls({runner.kind: runner for runner in runners})

    def kinds(self) -> list[str]:
        return sorted(self._actions)

    def get(self, kind: str) -> Action:
        try:
            return self._actions[kind]
        except KeyError:
            known = ", ".join(self.kinds())
            raise InvalidInput("action.kind", f"unknown kind {kind!r}; known: {known}") from None

    def validate(self, spec: Mapping[str, Any]) -> None:
        action = self.get(str(spec.get("kind", "")))
        try:
            action.validate(spec)
        except ValidationError as exc:
            raise _invalid(exc) from exc

    def query_id(self, spec: Mapping[str, Any]) -> str | None:
        return self.get(str(spec.get("kind", ""))).query_id(spec)

    async def aclose(self) -> None:
        for action in self._actions.values():
            await action.aclose()


def _invalid(exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    path = ".".join(str(part) for part in ("action", *first["loc"]))
    return InvalidInput(path, first["msg"])

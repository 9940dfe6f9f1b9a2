"""The actions by kind: what the services and the worker see of this package."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from pacer.actions.discovery import SchemaCatalog
from pacer.actions.http import HttpActionRunner, HttpPoster
from pacer.actions.metric import MetricActionRunner
from pacer.actions.python import PythonActionRunner
from pacer.actions.sim import SimActionRunner
from pacer.actions.sql import SqlActionRunner
from pacer.actions.targets import Targets
from pacer.domain.errors import InvalidInput
from pacer.ports import Action
from pacer.sim.live import LiveSim

__all__ = ["ActionRegistry"]


class ActionRegistry:
    """Dispatches on ``spec["kind"]``; turns pydantic errors into ``InvalidInput`` naming the
    field as ``action.<path>``, so every caller reports a bad spec the same way."""

    def __init__(self, actions: Mapping[str, Action], catalog: SchemaCatalog | None = None) -> None:
        self._actions = dict(actions)
        #: The schemas that ``metric`` jobs are checked against; the API shows them too.
        self.catalog = catalog

    @classmethod
    def default(
        cls,
        targets: Targets,
        functions: Mapping[str, Callable[..., Any]],
        base_url: str | None = None,
        catalog: SchemaCatalog | None = None,
        sim: LiveSim | None = None,
    ) -> ActionRegistry:
        """The built-in kinds; ``sql`` and ``metric`` sinks and ``http`` share one HTTP client.
        ``base_url`` (this server's API) resolves sinks given as a path."""
        poster = HttpPoster()
        catalog = catalog or SchemaCatalog(targets)
        runners: list[Action] = [
            SqlActionRunner(targets, poster, base_url),
            MetricActionRunner(targets, catalog, poster, base_url),
            HttpActionRunner(poster),
            PythonActionRunner(functions),
            SimActionRunner(sim),
        ]
        return cls({runner.kind: runner for runner in runners}, catalog)

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

    def needs_admin(self, spec: Mapping[str, Any]) -> str | None:
        """Why submitting ``spec`` over the API takes an admin token, or None.

        Raw SQL runs whatever its author wrote on a target. A ``python`` action naming a
        function that no job definition registered would import any module and call any
        function with caller-chosen arguments (``os:system``): code execution, so admin only.
        """
        kind = spec.get("kind")
        if kind == "sql":
            return "raw SQL jobs and tasks need an admin token"
        python = self._actions.get("python")
        registered = python.functions if isinstance(python, PythonActionRunner) else {}
        if kind == "python" and spec.get("function") not in registered:
            return "a python function not registered by a job definition needs an admin token"
        return None

    async def aclose(self) -> None:
        for action in self._actions.values():
            await action.aclose()


def _invalid(exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    path = ".".join(str(part) for part in ("action", *first["loc"]))
    return InvalidInput(path, first["msg"])

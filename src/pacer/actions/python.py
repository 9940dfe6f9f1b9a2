"""The ``python`` action: call a function named ``module:qualname`` with the run's parameters.

Functions are looked up in the live registry that ``@pacer.job`` fills before importing, so a
function defined in a jobs file (not importable by module name) still resolves.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from pacer.domain.errors import ActionFailed, InvalidInput
from pacer.domain.fingerprints import work_id
from pacer.domain.models import PythonAction
from pacer.ports import RunContext

__all__ = ["PythonActionRunner"]


@dataclass(frozen=True)
class _Callee:
    """What a run needs to know about its function, worked out once per function.

    ``inspect.signature`` and validating the action spec cost more than calling a no-op
    function does; a worker draining thousands of runs a second of one function paid them
    on every run (10 % of a worker's time in the profile in BENCHMARKS.md).
    """

    function: Callable[..., Any]
    is_async: bool
    #: Parameter names the function accepts; ``None``: it takes any (``**kwargs``, or no
    #: signature to read).
    accepted: frozenset[str] | None
    wants_ctx: bool

    @classmethod
    def of(cls, function: Callable[..., Any]) -> _Callee:
        try:
            parameters = inspect.signature(function).parameters
        except (TypeError, ValueError):  # builtins without a signature: pass everything
            return cls(function, inspect.iscoroutinefunction(function), None, False)
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        accepted = None if takes_any else frozenset(parameters)
        return cls(function, inspect.iscoroutinefunction(function), accepted, "ctx" in parameters)

    def arguments(self, ctx: RunContext) -> dict[str, Any]:
        """The run's parameters as keywords, plus ``ctx`` if asked for.

        A function without ``**kwargs`` gets only the parameters it names: runs carry
        parameters meant for every kind of action (``as_of``), and a function should not
        fail for not wanting them.
        """
        accepted = self.accepted
        if accepted is None:
            kwargs = dict(ctx.parameters)
        else:
            kwargs = {k: v for k, v in ctx.parameters.items() if k in accepted}
        if self.wants_ctx:
            kwargs["ctx"] = ctx
        return kwargs


class PythonActionRunner:
    """Executes ``python`` actions; async functions on the loop, sync ones in a thread."""

    kind = "python"

    def __init__(self, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.functions = functions
        #: Function name -> (the registry's entry when resolved, the callee). A registered
        #: function replaced in the live registry (a jobs file loaded again) is noticed by
        #: identity and worked out again.
        self._callees: dict[str, tuple[object, _Callee]] = {}

    def validate(self, spec: Mapping[str, Any]) -> None:
        action = PythonAction.model_validate(spec)
        try:
            self.resolve(action.function)
        except LookupError as exc:
            raise InvalidInput("action.function", str(exc)) from exc

    def query_id(self, spec: Mapping[str, Any]) -> str | None:
        """Executions of one python function group together, as one statement's do."""
        target = spec.get("function")
        return work_id("python", target) if isinstance(target, str) else None

    def resolve(self, name: str) -> Callable[..., Any]:
        """The registered function, else the imported one; ``LookupError`` if neither."""
        registered = self.functions.get(name)
        if registered is not None:
            return registered
        module_name, _, qualname = name.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for attribute in qualname.split("."):
                target = getattr(target, attribute)
        except (ImportError, AttributeError) as exc:
            raise LookupError(f"cannot resolve {name!r}: {exc}") from exc
        if not callable(target):
            raise LookupError(f"{name!r} is not callable")
        return target  # type: ignore[no-any-return]

    async def execute(self, spec: Mapping[str, Any], ctx: RunContext) -> Any:
        callee = self._callee(spec)
        function = callee.function
        kwargs = callee.arguments(ctx)
        try:
            if callee.is_async:
                value = await function(**kwargs)
            else:
                value = await asyncio.to_thread(functools.partial(function, **kwargs))
                if inspect.isawaitable(value):  # a sync wrapper around a coroutine function
                    value = await value
        except ActionFailed:
            raise
        except Exception as exc:
            raise ActionFailed(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        return _json_safe(value)

    async def aclose(self) -> None:
        return None

    def _callee(self, spec: Mapping[str, Any]) -> _Callee:
        name = spec.get("function")
        if isinstance(name, str) and spec.keys() <= _SPEC_KEYS:
            cached = self._callees.get(name)
            # Still valid while the registry holds the same object it held (or still none).
            if cached is not None and self.functions.get(name) is cached[0]:
                return cached[1]
        try:
            action = PythonAction.model_validate(spec)
            callee = _Callee.of(self.resolve(action.function))
        except (ValidationError, LookupError) as exc:
            # Retrying will not make a missing function appear; a deploy will, with a new run.
            raise ActionFailed(str(exc), retryable=False) from exc
        self._callees[action.function] = (self.functions.get(action.function), callee)
        return callee


#: The fields of a python action spec; anything else goes through full validation.
_SPEC_KEYS = frozenset({"kind", "function"})


def _json_safe(value: Any) -> Any:
    """Results are stored as JSON; anything else is kept as its text rather than lost."""
    if value is None or type(value) in (str, int, bool):  # most runs: skip the encode
        return value
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value

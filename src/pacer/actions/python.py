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
from typing import Any

from pydantic import ValidationError

from pacer.domain.errors import ActionFailed, InvalidInput
from pacer.domain.fingerprints import work_id
from pacer.domain.models import PythonAction
from pacer.ports import RunContext

__all__ = ["PythonActionRunner"]


class PythonActionRunner:
    """Executes ``python`` actions; async functions on the loop, sync ones in a thread."""

    kind = "python"

    def __init__(self, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.functions = functions

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
        function = self._function(spec)
        kwargs = _arguments(function, ctx)
        try:
            if inspect.iscoroutinefunction(function):
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

    def _function(self, spec: Mapping[str, Any]) -> Callable[..., Any]:
        try:
            return self.resolve(PythonAction.model_validate(spec).function)
        except (ValidationError, LookupError) as exc:
            # Retrying will not make a missing function appear; a deploy will, with a new run.
            raise ActionFailed(str(exc), retryable=False) from exc


def _arguments(function: Callable[..., Any], ctx: RunContext) -> dict[str, Any]:
    """The run's parameters as keywords, plus ``ctx`` if asked for.

    A function without ``**kwargs`` gets only the parameters it names: runs carry parameters
    meant for every kind of action (``as_of``), and a function should not fail for not
    wanting them.
    """
    try:
        accepted = inspect.signature(function).parameters
    except (TypeError, ValueError):  # builtins without a signature: pass everything
        return dict(ctx.parameters)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    kwargs = {k: v for k, v in ctx.parameters.items() if takes_any or k in accepted}
    if "ctx" in accepted:
        kwargs["ctx"] = ctx
    return kwargs


def _json_safe(value: Any) -> Any:
    """Results are stored as JSON; anything else is kept as its text rather than lost."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value

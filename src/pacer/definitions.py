"""Where users define jobs without touching Pacer: a decorator, or files in a jobs folder.

``@pacer.job(cron="0 13 * * *", tz="Europe/Amsterdam")`` on a function, or a ``*.toml`` /
``*.yaml`` file holding one job (or a ``[[jobs]]`` list). Both produce the same ``JobSpec`` the
HTTP API accepts, and are written to the same store at start.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tomllib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from pacer.domain.errors import InvalidInput
from pacer.domain.models import JobSpec

F = TypeVar("F", bound=Callable[..., Any])

#: Functions of python jobs, by "module:qualname": the python action looks here first.
FUNCTIONS: dict[str, Callable[..., Any]] = {}
#: Jobs declared with the decorator, by name, in declaration order.
DECLARED: dict[str, JobSpec] = {}
#: While a jobs folder's module is imported: every job it declares, duplicates included
#: (``DECLARED`` keeps one per name, so a clash would pass unseen).
_importing: list[JobSpec] | None = None


def job(
    cron: str | None = None,
    *,
    every: str | None = None,
    at: datetime | None = None,
    tz: str = "UTC",
    name: str | None = None,
    **options: Any,
) -> Callable[[F], F]:
    """Declare a python job; ``options`` are any other ``JobSpec`` fields (retry, misfire, ...)."""

    def register(fn: F) -> F:
        key = f"{fn.__module__}:{fn.__qualname__}"
        schedule = _schedule(cron, every, at, tz, options, origin=key)
        job_name = name or fn.__name__
        action = {"kind": "python", "function": key}
        data = {"name": job_name, "action": action, "schedule": schedule, **options}
        DECLARED[job_name] = validate(data, key)
        if _importing is not None:
            _importing.append(DECLARED[job_name])
        FUNCTIONS[key] = fn
        return fn

    return register


def _schedule(
    cron: str | None,
    every: str | None,
    at: datetime | None,
    tz: str,
    options: dict[str, Any],
    origin: str,
) -> dict[str, Any] | None:
    """The schedule table of the decorator's arguments. Arguments that would be dropped are
    refused: ``every=`` beside ``cron=`` (it would replace it), and bounds or jitter without
    any schedule."""
    extra: dict[str, Any] = {
        k: options.pop(k) for k in ("start", "end", "jitter_s") if k in options
    }
    if every is not None and cron is not None:
        raise InvalidInput(f"{origin}: schedule", "give one of cron=, every= or at=, not several")
    if every is not None:
        cron = f"@every {every}"
    if cron is None and at is None:
        if extra:
            given = ", ".join(f"{k}=" for k in extra)
            raise InvalidInput(
                f"{origin}: schedule", f"{given} needs a schedule (cron=, every= or at=)"
            )
        return None
    return {"cron": cron, "at": at, "tz": tz, **extra}


def validate(data: dict[str, Any], origin: str) -> JobSpec:
    """A job spec, or an ``InvalidInput`` naming ``origin`` and the first bad field."""
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise InvalidInput(f"{origin}: {field}", error["msg"]) from exc


def load_jobs_dir(path: Path) -> list[JobSpec]:
    """Every job in a folder: decorated functions in ``*.py``, declarations in TOML/YAML."""
    if not path.is_dir():
        raise InvalidInput("jobs_dir", f"{path} is not a folder")
    found: list[tuple[JobSpec, str]] = []
    for file in sorted(path.iterdir()):
        if file.suffix == ".py":
            found.extend((spec, file.name) for spec in _import_module(file))
        elif file.suffix in (".toml", ".yaml", ".yml"):
            found.extend((validate(item, file.name), file.name) for item in read_declarations(file))
    return refuse_duplicates(found)


def refuse_duplicates(found: list[tuple[JobSpec, str]]) -> list[JobSpec]:
    """The specs, unless two share a name: then an error naming both origins, since keeping
    either one would silently drop the other."""
    origins: dict[str, str] = {}
    for spec, origin in found:
        if spec.name in origins:
            first = origins[spec.name]
            where = f"twice in {origin}" if first == origin else f"in both {first} and {origin}"
            raise InvalidInput(f"{origin}: name", f"job {spec.name!r} is defined {where}")
        origins[spec.name] = origin
    return [spec for spec, _ in found]


def _import_module(file: Path) -> list[JobSpec]:
    """Every job the module declares while it is imported, in order."""
    global _importing
    module_name = f"pacer_jobs_{file.stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise InvalidInput(file.name, "cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    declared: list[JobSpec] = []
    _importing = declared
    try:
        spec.loader.exec_module(module)
    finally:
        _importing = None
    return declared


def read_declarations(file: Path) -> list[dict[str, Any]]:
    """The job tables of a TOML, YAML or JSON file: one job, or a ``jobs`` list."""
    return declarations(read_data(file), file.name)


def holds_list(data: Any) -> bool:
    """Whether a file's content is a ``jobs`` list rather than one job table."""
    return isinstance(data, dict) and isinstance(data.get("jobs"), list)


def declarations(data: Any, origin: str) -> list[dict[str, Any]]:
    """The job tables in a file's parsed content."""
    if holds_list(data):
        return list(data["jobs"])
    if isinstance(data, dict):
        return [data]
    raise InvalidInput(origin, "expected a job table or a 'jobs' list")


def read_data(file: Path) -> Any:
    """The parsed content of a TOML, YAML or JSON file, or an ``InvalidInput`` naming it."""
    try:
        text = file.read_text()
    except OSError as exc:
        raise InvalidInput(file.name, exc.strerror or str(exc)) from exc
    try:
        if file.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif file.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, ValueError) as exc:
        raise InvalidInput(file.name, f"not valid {file.suffix[1:].upper()}: {exc}") from exc
    return data

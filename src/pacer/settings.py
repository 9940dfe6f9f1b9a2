"""Configuration: ``PACER_*`` environment variables, then ``pacer.toml``, then defaults.

Targets (the databases that jobs query) are named in ``[targets]`` of ``pacer.toml`` or in
``PACER_TARGETS`` as JSON, so a job refers to ``registrations``, never to a URL with a password.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pacer.domain.errors import InvalidInput


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PACER_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./pacer.db"
    jobs_dir: Path | None = None
    config_file: Path = Path("pacer.toml")
    targets: dict[str, str] = Field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65_535)
    concurrency: int = Field(default=50, ge=1, le=10_000)
    batch: int = Field(default=100, ge=1, le=10_000)
    lease_s: float = Field(default=30.0, gt=0)
    heartbeat_s: float = Field(default=10.0, gt=0)
    poll_s: float = Field(default=5.0, gt=0)
    grace_s: float = Field(default=30.0, ge=0)
    as_of: date | None = None
    log_level: str = "INFO"
    #: Ad-hoc tasks without a due time run this long after they are queued.
    adhoc_delay_ms: float = Field(default=100.0, ge=0, le=3_600_000)
    #: The longest ``POST /delay`` accepted.
    max_delay_ms: float = Field(default=3_600_000.0, gt=0)
    #: Seconds between keepalive comments on the SSE stream; clients treat twice this
    #: without a byte as a dead connection.
    sse_keepalive_s: float = Field(default=10.0, gt=0, le=300)
    #: Execution log retention: acknowledged events are kept this long; none past the hard age.
    event_keep_s: float = Field(default=86_400.0, ge=0)
    event_hard_s: float = Field(default=30 * 86_400.0, gt=0)
    #: Where resource utilization comes from: "host" (psutil), "sim" (the simulated
    #: database), or "none".
    resource_sampler: str = Field(default="host", pattern="^(host|sim|none)$")
    resource_window_s: float = Field(default=30.0, gt=0, le=3_600)
    resource_sample_s: float = Field(default=1.0, gt=0, le=60)
    #: The simulated database's scenario (docs/SCENARIOS.md), with ``resource_sampler="sim"``.
    sim_scenario: str = "bursty"
    #: ``pacer up --pace``: the embedded pacer's own file and its longest delay.
    pace_db: Path = Path("pacer-pace.db")
    pace_max_delay_s: float = Field(default=60.0, gt=0)
    #: Per query id, a longest delay overriding ``pace_max_delay_s`` (JSON in the environment:
    #: ``PACER_PACE_MAX_DELAY_BY_QUERY='{"<query id>": 2}'``).
    pace_max_delay_by_query: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    #: The disk throughput that counts as 100 % IO for the host sampler.
    host_disk_mb_s: float = Field(default=200.0, gt=0)
    #: Process names whose CPU and memory the host sampler counts (empty: the whole machine).
    host_processes: list[str] = Field(default_factory=list)
    #: A first admin token, created (hashed) at start if the store does not hold it yet.
    admin_token: str | None = None
    #: On a first start with no token at all, an admin token is made and written here (mode
    #: 0600), so the demo's user has one without reading the logs.
    admin_token_file: Path | None = None
    #: Where other processes reach this server's API; sinks given as a path ("/result") are
    #: resolved against it. Defaults to http://host:port.
    public_url: str | None = None

    def base_url(self) -> str:
        """The API's own base URL, without a trailing slash."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return (self.public_url or f"http://{host}:{self.port}").rstrip("/")

    def with_file(self) -> Settings:
        """Merge ``pacer.toml`` (if present) under the environment's values."""
        if not self.config_file.is_file():
            return self
        try:
            data: dict[str, Any] = tomllib.loads(self.config_file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(str(self.config_file), f"not valid TOML: {exc}") from exc
        targets = {**data.get("targets", {}), **self.targets}
        base = self.config_file.parent
        targets = {name: _relative_sqlite(url, base) for name, url in targets.items()}
        section = dict(data.get("pacer", {}))
        for path in ("admin_token_file", "jobs_dir", "pace_db"):
            if isinstance(section.get(path), str):  # anything else is refused, naming it
                section[path] = str(base / section[path])
        if isinstance(section.get("database_url"), str):
            section["database_url"] = _relative_sqlite(section["database_url"], base)
        merged = {
            **section,
            **self.model_dump(exclude_unset=True),
            "targets": targets,
        }
        return Settings.model_validate(merged)


def _relative_sqlite(url: str, base: Path) -> str:
    """``sqlite:///data/x.db`` (any SQLite driver) in a config file means relative to that
    file, not to the directory the command runs in. Values from the environment or options
    never come through here: those are relative to where they were typed."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return url  # refused, naming the store, when it is opened
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database.startswith(":"):
        return url
    if Path(database).is_absolute() or database.startswith("file:"):
        return url
    return parsed.set(database=str((base / database).resolve())).render_as_string(
        hide_password=False
    )

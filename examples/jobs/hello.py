"""A python job: the decorator is all it takes. Runs every minute."""

from __future__ import annotations

from datetime import UTC, datetime

import pacer


@pacer.job(every="1m", retry={"max_attempts": 3, "backoff_s": 5})
def hello(greeting: str = "hello") -> dict[str, str]:
    return {"message": f"{greeting} from pacer", "at": datetime.now(UTC).isoformat()}

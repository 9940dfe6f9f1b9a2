"""The pure core: models, state machine, schedules, retries, fingerprints. No I/O here."""

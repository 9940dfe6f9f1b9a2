"""The worker process: claim, execute, heartbeat, complete, shut down cleanly."""

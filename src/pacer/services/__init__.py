"""Use cases over the ports: scheduling, job management, and the read models."""

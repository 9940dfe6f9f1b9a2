"""Pacer: a durable scheduler and executor for database work.

The Python API for registering jobs is ``pacer.job``; everything else is reached through the
``pacer`` command, the HTTP API, or ``pacer.bootstrap``.
"""

from pacer.definitions import job

__all__ = ["__version__", "job"]
__version__ = "0.1.0"

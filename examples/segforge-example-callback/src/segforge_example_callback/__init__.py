"""segforge-example-callback: the ``event_log`` training callback (every event as one JSON line)."""

__version__ = "0.1.0"

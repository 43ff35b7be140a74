"""The module named by the entry point: segforge calls this hook when it loads plugins."""

from segforge import hookimpl


@hookimpl
def segforge_register_callbacks(registry):
    from segforge_example_callback.event_log import EventLog

    registry.add(EventLog)

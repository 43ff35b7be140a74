"""The ``segforge`` command line: one module per command, one error handler in :mod:`.app`."""

"""The package version, importable without importing anything heavy (``segforge --version``)."""

__version__ = "0.1.0"

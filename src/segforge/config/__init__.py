"""Pydantic models for every artifact segforge reads or writes, and their JSON IO."""

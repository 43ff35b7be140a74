"""Planning: dataset fingerprint and experiment planners."""

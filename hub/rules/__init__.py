"""Rules: definitions, YAML loader and the pure rule engine."""

"""Operator commands to devices: stored, published on ``cmd``, correlated with ``cmd/ack``, timed out."""

"""Deployment files for the edge agent: systemd unit and example configs (shipped as package data)."""

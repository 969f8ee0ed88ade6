"""Incidents: lifecycle on the state DB, correlation groups, the ingest sink and the API."""

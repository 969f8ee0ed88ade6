"""One router per resource of the hub's core API."""

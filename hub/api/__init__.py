"""The hub's REST API: an app factory, dependencies, one router per resource."""

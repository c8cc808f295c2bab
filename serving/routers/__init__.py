"""Routers of the /v1 API, one per resource."""

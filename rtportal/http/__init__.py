"""The HTTP API: routes, request bodies, errors mapped at the boundary."""

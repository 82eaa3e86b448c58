"""The websocket layer: frames (parsing and encoding), the sans-I/O protocol core
(protocol.py), the transport-independent connection (core.py), and two
transports: rtportal's own uvicorn protocol (native.py, deployed) and the
portable Starlette endpoint (endpoint.py)."""

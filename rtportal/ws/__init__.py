"""Websocket transport: sans-I/O protocol core (protocol.py) and Starlette endpoint."""

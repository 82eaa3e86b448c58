"""Fan-out across workers: the hub, the broker message format, brokers."""

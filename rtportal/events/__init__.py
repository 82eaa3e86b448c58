"""The event kernel: events and their codec, the kind registry, the log, the group commit."""

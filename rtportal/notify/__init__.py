"""Email and SMS: the outbox table, SMTP delivery, SMS providers."""

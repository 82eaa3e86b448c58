"""Who may reach what: memberships, sessions, removal and revocation."""

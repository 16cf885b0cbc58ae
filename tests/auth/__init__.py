"""Authentication and permissions (tether.auth): users, grants, roles, tokens, Entra ID."""

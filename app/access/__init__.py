"""Who may call: credentials, tenants' scopes and limits."""

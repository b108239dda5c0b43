"""GraphiQL, self-hosted: its vendored files, the page and its routes (app.explorer)."""

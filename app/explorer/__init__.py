"""GraphiQL, self-hosted: the page ``GET /graphql`` serves to a browser (``page``), and the
files it loads, at pinned npm versions inside the package (``assets``; bumped with
``python -m app.explorer.vendor``). ``GATEWAY_GRAPHIQL=0`` leaves both out (404)."""

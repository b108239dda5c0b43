"""The gateway's one way out to the providers: ``Upstream`` (``client``) over a transport."""

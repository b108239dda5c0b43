"""``python -m app`` is the ``recording-gateway`` command."""

from app.cli import main

raise SystemExit(main())

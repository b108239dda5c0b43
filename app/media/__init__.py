"""Media: signed links to a recording's audio (``links``), and ``/media/{token}``, which
streams it from the provider (``proxy``, slicing byte ranges with ``ranges``)."""

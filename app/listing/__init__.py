"""The ``recordings`` listing: one merged, filtered walk over every provider (``merge``),
resumable by signed cursors (``cursors``)."""

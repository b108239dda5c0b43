"""Exact aggregates over the recordings a filter selects (``recordingStats``).

``aggregate``: the groupings (``Dimension``) and the figures per group, summed as pages arrive.
``walk``: reads every selected provider's listing to its end with the listing's own lanes
(``app.listing.merge``), so the push-down, exact filter and partial-failure rules are those of
``recordings``; and keeps the answers of closed periods in the recording cache's backend.
"""

"""Market data: streaming books into the engine (recording and importers come next)."""

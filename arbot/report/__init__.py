"""Reports a person reads: summaries from the store, self-contained HTML pages with SVG plots."""

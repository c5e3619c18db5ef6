"""Word-count domain: validation and persistent stores, free of HTTP."""

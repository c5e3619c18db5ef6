"""Operating the service: what it records about its work, free of HTTP."""

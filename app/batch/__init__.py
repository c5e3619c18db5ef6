"""Score many images offline with the service's own pipeline, no server."""

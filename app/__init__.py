"""Word-count and image-classification service built on Bottle and cheroot."""

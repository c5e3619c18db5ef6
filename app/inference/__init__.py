"""Image classification: decoding, pre-processing and models, no Bottle."""

"""Run the service on AWS Lambda, behind API Gateway or a function URL.

``python -m awslambdaric app.serverless.handler`` (``Dockerfile.lambda``)
imports this module once per execution environment. The import reads the
settings (``APP_`` variables, as everywhere), builds the service's parts
with :func:`app.assembly.build` and loads and warms the default model
version: that is Lambda's init phase, so each invocation then only runs
its request. apig-wsgi turns the event of a REST API (payload format
1.0), an HTTP API or a function URL (2.0) into a WSGI request, and the
answer into the response each of them expects; an answer that is not
text goes out base64-encoded.
"""

from apig_wsgi import make_lambda_handler

from app.assembly import build
from app.inference.decoding import configure_pillow
from app.settings import load_settings


def make_handler(settings):
    """Return ``(serve, parts)``: the event handler of the built service."""
    # Process-wide state belongs to the process, as in api.py.
    configure_pillow(settings.max_image_pixels)
    parts = build(settings)
    return make_lambda_handler(parts.wsgi, binary_support=True), parts


_serve, PARTS = make_handler(load_settings())


def handler(event, context):
    """Answer one API Gateway or function-URL event with the service."""
    return _serve(event, context)

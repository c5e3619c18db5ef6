"""A naive model server: the common tutorial pattern, as a baseline.

One global interpreter behind a ``threading.Lock``; each request thread
decodes its upload with plain Pillow (full-size decode, no draft mode),
resizes and normalises it, then waits for the lock to run the model.
It is served by the standard library's wsgiref server, which Bottle's
built-in ``run()`` uses, in its threaded form (what Flask's development
server does since 1.0), so that decoding in one thread can overlap the
model in another. wsgiref speaks HTTP/1.0: one connection per request.

Usage: ``python bench/naive_app.py [--port P]``; it logs ``serving on
http://HOST:PORT`` on stderr once it accepts connections.
"""

import argparse
import io
import json
import pathlib
import socketserver
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import bottle
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

MODEL_DIR = pathlib.Path(__file__).resolve().parent.parent / "model" / "1"

interpreter = Interpreter(model_path=str(MODEL_DIR / "model.tflite"))
interpreter.allocate_tensors()
input_index = interpreter.get_input_details()[0]["index"]
output_index = interpreter.get_output_details()[0]["index"]
labels = (MODEL_DIR / "labels.txt").read_text(encoding="utf-8").splitlines()
lock = threading.Lock()
app = bottle.Bottle()


@app.post("/predict/model/v1")
def predict():
    """Classify the uploaded image field and return the top 5 classes."""
    upload = bottle.request.files.get("image")
    image = Image.open(io.BytesIO(upload.file.read())).convert("RGB")
    image = image.resize((224, 224), Image.Resampling.BILINEAR)
    pixels = (np.asarray(image, dtype=np.float32) - 127.0) / 128.0
    with lock:
        interpreter.set_tensor(input_index, pixels[np.newaxis])
        interpreter.invoke()
        scores = interpreter.get_tensor(output_index)[0].copy()
    best = np.argsort(scores)[::-1][:5]
    bottle.response.content_type = "application/json"
    return json.dumps({"predictions": [{"classes": [
        {"label": labels[index], "index": int(index),
         "score": float(scores[index])} for index in best]}]})


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server with one thread per connection."""

    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    """wsgiref's handler without its per-request access log line."""

    def log_message(self, *args):
        """Drop the log line, as ``bottle.run(quiet=True)`` does."""


def main(argv=None):
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port, app,
                         server_class=ThreadingWSGIServer,
                         handler_class=QuietHandler)
    host, port = server.server_address[:2]
    print(f"serving on http://{host}:{port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start the service: read settings, build the app, serve it on cheroot.

Usage: ``python api.py [--host H] [--port P] [--config FILE] [--threads N]``.
"""

import argparse
import logging
import sys

from app.inference.registry import ModelRepositoryError
from app.server import make_server, serve_until_signalled, server_url
from app.settings import SettingsError, load_settings
from app.web.application import create_app

log = logging.getLogger("api")


def parse_args(argv):
    """Parse the command line; options override setup.cfg and APP_ vars."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="address to bind (default from "
                        "settings: 127.0.0.1)")
    parser.add_argument("--port", type=int,
                        help="port to bind; 0 picks a free one")
    parser.add_argument("--config", help="extra config file with an [app] "
                        "section, layered over setup.cfg")
    parser.add_argument("--threads", type=int,
                        help="number of server worker threads")
    return parser.parse_args(argv)


def main(argv=None):
    """Run the service until SIGTERM or SIGINT; return the exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {name: getattr(args, name)
                 for name in ("host", "port", "threads")
                 if getattr(args, name) is not None}
    try:
        settings = load_settings(args.config, overrides=overrides)
    except SettingsError as error:
        print(f"error: invalid settings: {error}", file=sys.stderr)
        return 2
    try:
        service = create_app(settings)
    except ModelRepositoryError as error:
        print(f"error: cannot serve the model: {error}", file=sys.stderr)
        return 2
    try:
        server = make_server(service.wsgi, settings)
        log.info("serving on %s", server_url(server))
        serve_until_signalled(server)
    finally:
        service.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

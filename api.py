"""Start the service: read settings, build its parts, serve them on cheroot.

Usage: ``python api.py [--host H] [--port P] [--threads N] [--config FILE]``;
``python api.py --help`` lists every setting. ``python api.py keys new NAME
--scopes predict,words:read`` makes an API key.
"""

import gc

if __name__ == "__main__":
    # Loading the modules and building the service allocate some 70,000
    # objects and free almost none: the cyclic collector would scan them
    # again and again (about 13 ms of the start). main() freezes them
    # once they are built, and collects from then on.
    gc.disable()

import argparse
import logging
import sys

from app.assembly import build
from app.inference.decoding import configure_pillow
from app.inference.memory import limit_malloc_arenas
from app.models.repository import ModelRepositoryError
from app.ops.keys import SCOPES, key_line, new_key
from app.ops.request_log import configure_logging
from app.server import make_server, serve_until_signalled, server_url
from app.settings import SettingsError, describe, load_settings

log = logging.getLogger("api")
OPTIONS = ("host", "port", "threads")


def parse_args(argv):
    """Parse the command line; options override setup.cfg and APP_ vars."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_settings_help())
    parser.add_argument("--host", help="address to bind (default from "
                        "settings: 127.0.0.1)")
    parser.add_argument("--port", type=int,
                        help="port to bind; 0 picks a free one")
    parser.add_argument("--threads", type=int,
                        help="number of server worker threads")
    parser.add_argument("--config", help="extra config file with an [app] "
                        "section, layered over setup.cfg")
    return parser.parse_args(argv)


def _settings_help():
    """Return the settings, their defaults and meanings, for --help."""
    lines = ["settings (set in setup.cfg, a --config file, or as APP_<NAME> "
             "environment variables):"]
    for name, kind, default, doc in describe():
        lines.append(f"  {name} ({kind}, default {default})")
        lines.append(f"      {doc}")
    return "\n".join(lines)


def keys_command(argv):
    """Make a new API key: print it once, and the line for the key file."""
    parser = argparse.ArgumentParser(
        prog="api.py keys", description="Make an API key.")
    verbs = parser.add_subparsers(dest="verb", required=True)
    new = verbs.add_parser("new", help="make a key and print it once")
    new.add_argument("name", help="who holds the key (shown in logs)")
    new.add_argument("--scopes", required=True,
                     help=f"comma-separated, of: {', '.join(SCOPES)}")
    args = parser.parse_args(argv)
    scopes = [scope.strip() for scope in args.scopes.split(",")
              if scope.strip()]
    unknown = sorted(set(scopes) - set(SCOPES))
    if not scopes or unknown:
        parser.error(f"unknown scope(s): {', '.join(unknown) or 'none'}; "
                     f"scopes are {', '.join(SCOPES)}")
    if not args.name.isprintable() or not args.name or any(
            character.isspace() for character in args.name):
        parser.error("the name must be one word")
    key = new_key()
    print(f"key (shown only now; give it to {args.name}):\n  {key}\n"
          "line for the api_keys_file (holds only the key's SHA-256):\n"
          f"  {key_line(args.name, key, scopes)}")
    return 0


def main(argv=None):
    """Run the service until SIGTERM or SIGINT; return the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keys"]:
        return keys_command(argv[1:])
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {name: getattr(args, name) for name in OPTIONS
                 if getattr(args, name) is not None}
    try:
        settings = load_settings(
            args.config, overrides=overrides,
            override_sources={name: f"--{name}" for name in overrides})
    except SettingsError as error:
        print(f"error: invalid settings: {error}", file=sys.stderr)
        return 2
    # Process-wide state belongs to the process, not to the app it runs.
    configure_logging(settings.log_format)
    configure_pillow(settings.max_image_pixels)
    # Before any thread starts: fewer arenas keep less freed memory.
    if settings.malloc_arenas:
        limit_malloc_arenas(settings.malloc_arenas)
    # Bound before the models load, so a busy port fails at once.
    try:
        server = make_server(None, settings)
    except OSError as error:
        print(f"error: cannot listen on {settings.host}:{settings.port} "
              f"({error.strerror}); choose another with --port or "
              "APP_PORT", file=sys.stderr)
        return 2
    try:
        parts = build(settings)
    except (ModelRepositoryError, OSError, ValueError) as error:
        server.stop()
        print(f"error: cannot start: {error}", file=sys.stderr)
        return 2
    # What the start made lives as long as the process: leave it out of
    # every collection from now on (and, left in the young generation, it
    # would make the first collection, in the first request, a long one).
    gc.freeze()
    gc.enable()
    try:
        server.wsgi_app = parts.wsgi
        url = server_url(server)
        serve_until_signalled(
            server, announce=lambda: log.info(
                "serving on %s with %d threads; API docs at %s/docs",
                url, settings.threads, url),
            drain_seconds=settings.drain_seconds, draining=parts.draining)
    finally:
        parts.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

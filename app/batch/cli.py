"""The command line of a batch run: options, resume, summary, exit code.

``python -m app.batch SOURCE... --output results.csv`` scores every image
of the sources with the service's pipeline and writes one row per input,
in input order. Exit status: 0 when every input was scored, 1 when some
could not be (their rows carry the error code), 2 for a usage error.
"""

import argparse
import collections
import logging
import os
import signal
import sys
import time
from pathlib import Path

from app.batch.progress import make_progress
from app.batch.runner import run_in_order
from app.batch.scoring import Scorer
from app.batch.service import batch_settings, open_service
from app.batch.sources import SourceError, expand
from app.batch.writer import OutputError, format_of, open_writer, read_done
from app.models.repository import ModelRepositoryError
from app.settings import SettingsError

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

log = logging.getLogger("app.batch")


class UsageError(Exception):
    """The command line asks for something that cannot be done."""


def positive_int(text):
    """Parse a whole number of at least 1, for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def parse_args(argv):
    """Parse the command line; argparse exits 2 on a malformed one."""
    parser = argparse.ArgumentParser(
        prog="python -m app.batch",
        description="Classify image files, folders, globs and URL lists "
        "with the service's model, in process, and write one row per "
        "input, in input order.")
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="an image file, a folder (searched "
                        "recursively), a glob, a URL, or a .csv/.txt "
                        "file of URLs (one per line or a 'url' column)")
    parser.add_argument("-o", "--output", required=True, type=Path,
                        help="results file, .csv or .jsonl")
    parser.add_argument("--resume", action="store_true",
                        help="skip the inputs the output file already has")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output file")
    parser.add_argument("-w", "--workers", type=positive_int,
                        default=os.cpu_count() or 1,
                        help="parallel workers, one interpreter each "
                        "(default: one per CPU)")
    parser.add_argument("--model-version", type=positive_int,
                        help="model version (default: the service's "
                        "default version)")
    parser.add_argument("--top-k", type=positive_int,
                        help="classes per input (default: the "
                        "default_top_k setting, 5)")
    parser.add_argument("--config", help="extra config file with an [app] "
                        "section, layered over setup.cfg")
    parser.add_argument("--progress", default="auto",
                        choices=("auto", "bar", "lines", "off"),
                        help="a bar on a terminal, lines otherwise (auto)")
    args = parser.parse_args(argv)
    if args.resume and args.overwrite:
        parser.error("--resume and --overwrite exclude each other")
    return args


def main(argv=None):
    """Run a batch; return 0 (all scored), 1 (some failed) or 2 (usage)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"interrupted: the rows done are in {args.output}; run again "
              "with --resume to continue", file=sys.stderr)
        return EXIT_INTERRUPTED


def _interrupt(signum, frame):
    """Stop on SIGTERM as on Ctrl-C, closing the output cleanly."""
    raise KeyboardInterrupt


def run(args):
    """Score the sources as ``args`` say; return the exit code."""
    try:
        kind = format_of(args.output)
        inputs = expand(args.sources)
        settings = batch_settings(args.workers, args.model_version,
                                  args.config)
    except (OutputError, SourceError, SettingsError) as error:
        raise UsageError(error) from None
    top_k = args.top_k or settings.default_top_k
    done = _rows_done(args, kind, top_k)
    remaining, skipped, failed_before = _skip_done(inputs, done)
    try:
        service = open_service(settings)
    except ModelRepositoryError as error:
        raise UsageError(f"cannot load the model: {error}") from None
    try:
        if top_k > len(service.model.labels):
            raise UsageError(f"--top-k must be at most "
                             f"{len(service.model.labels)}, the number of "
                             "classes")
        counts = _score(args, kind, top_k, service, remaining,
                        len(inputs), skipped, failed_before)
    finally:
        service.close()
    print(_summary(args.output, service.model.version, len(inputs), skipped,
                   failed_before, *counts), flush=True)
    return EXIT_SOME_FAILED if counts[0] or failed_before else EXIT_OK


def _rows_done(args, kind, top_k):
    """Return the rows an earlier run wrote, when resuming it."""
    if args.output.exists() and not (args.resume or args.overwrite):
        raise UsageError(f"{args.output} exists: pass --resume to continue "
                         "that run, or --overwrite to replace it")
    if not args.resume:
        return []
    try:
        return read_done(args.output, kind, top_k)
    except (OutputError, OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot resume: {error}") from None


def _skip_done(inputs, done):
    """Return the inputs still to score, how many are done, how many failed.

    Rows are matched to inputs by source, as many times as each source
    was written, so an input listed twice is scored twice.
    """
    written = collections.Counter(source for source, _ in done)
    failed = collections.Counter(source for source, bad in done if bad)
    remaining, skipped, failed_before = [], 0, 0
    for item in inputs:
        if written[item.source]:
            written[item.source] -= 1
            skipped += 1
            if failed[item.source]:
                failed[item.source] -= 1
                failed_before += 1
        else:
            remaining.append(item)
    return remaining, skipped, failed_before


def _score(args, kind, top_k, service, remaining, total, skipped,
           failed_before):
    """Score the remaining inputs; return their counts and timings.

    The result is ``(failed, codes, count, seconds, cpu_seconds)``: CPU
    time of the whole process (every worker) while it scored.
    """
    try:
        writer = open_writer(args.output, kind, top_k, append=args.resume)
    except OSError as error:
        raise UsageError(f"cannot write {args.output}: "
                         f"{error.strerror or error}") from None
    progress = make_progress(args.progress, total, skipped, failed_before,
                             sys.stderr)
    codes = collections.Counter()
    score = Scorer(service.model, top_k, service.limits,
                   service.fetch_policy)

    def record(result):
        writer.write(result)
        if result.failed:
            codes[result.error] += 1
        progress.update(result.failed)

    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        run_in_order(remaining, score, args.workers, record)
    finally:
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        progress.close()
        writer.close()
    return sum(codes.values()), codes, len(remaining), seconds, cpu_seconds


def _summary(output, version, total, skipped, failed_before, failed, codes,
             scored, seconds, cpu_seconds):
    """Return the lines that close a run."""
    rate = scored / seconds if seconds > 0 else 0.0
    cpu_ms = 1000 * cpu_seconds / scored if scored else 0.0
    lines = [f"scored {scored} inputs with model version {version} in "
             f"{seconds:.2f} s ({rate:.1f} images/s, {cpu_ms:.0f} ms CPU "
             f"each): {scored - failed} ok, {failed} failed"]
    if skipped:
        lines.append(f"skipped {skipped} inputs already in {output} "
                     f"({failed_before} of them failed)")
    lines += [f"  {code}: {count}" for code, count in sorted(codes.items())]
    lines.append(f"{total} rows in {output}, "
                 f"{failed + failed_before} with an error")
    return "\n".join(lines)

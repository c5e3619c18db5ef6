"""Measure the batch CLI's throughput next to the in-process limit.

Usage, from the project root with the project's virtualenv::

    python -m bench.batch [--images 1000] [--rounds 3] [--workers N]

A folder of ``--images`` photos (the test photos, copied in turn) is
scored by ``python -m app.batch`` in a child process, as a user runs it,
and the same number of images by the in-process pipeline
(``bench/inprocess.py``) on as many threads as the batch has workers.
The two take turns, round by round, so that the drift of a shared
machine's speed goes into both sides of the ratio. The batch's rate is
the one it prints, from its first input to its last row; its wall time,
model loading and folder listing included, is shown beside it. CPU time
per image (all threads of the process) is shown for both: on a machine
that other work keeps busy, it is the steadier comparison.
Progress goes to stderr, the Markdown report to stdout.
"""

import argparse
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

if not __package__:
    # Run as ``python bench/batch.py``: make ``bench`` and ``app`` found.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench import machine, servers  # noqa: E402
from bench.inprocess import InProcessPipeline  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
PHOTOS = ("chelsea.jpg", "astronaut.jpg")
TARGET = 0.9
RATE = re.compile(r"scored (\d+) inputs .* \(([\d.]+) images/s, (\d+) ms "
                  r"CPU each\): (\d+) ok")


def parse_args(argv):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000,
                        help="images in the folder (default 1000)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of each side (default 3)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="batch workers and in-process threads "
                        "(default: one per CPU)")
    parser.add_argument("--model-version", type=int, default=2,
                        help="model version both sides run (default 2)")
    args = parser.parse_args(argv)
    if min(args.images, args.rounds, args.workers) < 1:
        parser.error("--images, --rounds and --workers must be positive")
    return args


def make_folder(folder, count):
    """Fill a folder with ``count`` photos, the test photos in turn."""
    sources = [ROOT / "tests" / "data" / name for name in PHOTOS]
    for number in range(count):
        source = sources[number % len(sources)]
        shutil.copyfile(source, folder / f"{number:06d}{source.suffix}")


def run_batch(folder, output, workers, version):
    """Run the CLI; return images/s, wall seconds, CPU seconds per image."""
    command = [sys.executable, "-m", "app.batch", str(folder),
               "--output", str(output), "--overwrite", "--progress", "off",
               "--workers", str(workers), "--model-version", str(version)]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env=servers.clean_environment(), timeout=3600)
    wall = time.perf_counter() - began
    match = RATE.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"the batch failed ({done.returncode}):\n"
                           f"{done.stdout}{done.stderr}")
    if match.group(1) != match.group(4):
        raise RuntimeError(f"not every image was scored:\n{done.stdout}")
    return float(match.group(2)), wall, int(match.group(3)) / 1000


def main(argv=None):
    """Take the measurements and print the report; return the exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    photos = [(ROOT / "tests" / "data" / name).read_bytes()
              for name in PHOTOS]
    inprocess, batch, walls, cpu = [], [], [], {"in": [], "batch": []}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        scratch = pathlib.Path(scratch)
        folder = scratch / "images"
        folder.mkdir()
        make_folder(folder, args.images)
        pipeline = InProcessPipeline(photos, (args.model_version,),
                                     threads=args.workers)
        try:
            pipeline.run(args.model_version, 50, args.workers)  # warm up
            for round_number in range(1, args.rounds + 1):
                cpu_began = time.process_time()
                result = pipeline.run(args.model_version, args.images,
                                      args.workers)
                cpu["in"].append((time.process_time() - cpu_began)
                                 / args.images)
                inprocess.append(result.rate)
                rate, wall, per_image = run_batch(
                    folder, scratch / "results.csv", args.workers,
                    args.model_version)
                batch.append(rate)
                walls.append(wall)
                cpu["batch"].append(per_image)
                print(f"round {round_number}: in-process "
                      f"{result.rate:.1f} images/s, batch {rate:.1f} "
                      f"images/s ({wall:.2f} s wall)", file=sys.stderr,
                      flush=True)
        finally:
            pipeline.close()
    print(render(args, inprocess, batch, walls, cpu))
    return 0


def render(args, inprocess, batch, walls, cpu):
    """Return the Markdown report of the measurements."""
    limit, rate = statistics.median(inprocess), statistics.median(batch)
    # Each round's two sides ran back to back: their ratio carries the
    # least drift, so the verdict is the median of those ratios.
    ratio = statistics.median(ours / theirs
                              for ours, theirs in zip(batch, inprocess))
    cpu_in = statistics.median(cpu["in"]) * 1000
    cpu_batch = statistics.median(cpu["batch"]) * 1000
    verdict = "met" if ratio >= TARGET else "missed"
    lines = [
        f"Batch scoring of a folder of {args.images} photos, model version "
        f"{args.model_version}, {args.workers} workers; medians of "
        f"{args.rounds} alternating rounds.",
        "",
        "| side | images/s | CPU per image | wall time |",
        "|---|---|---|---|",
        f"| in-process limit (`bench/inprocess.py`) | {limit:.1f} | "
        f"{cpu_in:.0f} ms | |",
        f"| `python -m app.batch` | {rate:.1f} | {cpu_batch:.0f} ms | "
        f"{statistics.median(walls):.2f} s |",
        "",
        f"Batch / in-process, median of the rounds' ratios: {ratio:.3f} "
        f"(target >= {TARGET}: {verdict}); CPU per image, in-process / "
        f"batch: {cpu_in / cpu_batch:.3f}.",
        f"Rounds, images/s: in-process "
        f"{', '.join(f'{value:.1f}' for value in inprocess)}; batch "
        f"{', '.join(f'{value:.1f}' for value in batch)}.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {item} | {value} |" for item, value in machine.describe()),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

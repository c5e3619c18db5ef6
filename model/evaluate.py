"""Measure how often a model version agrees with version 1 on photos.

Version 1 (float32) is the reference; every other version named is run on
the same inputs and compared with it:

* top-1 agreement: the share of inputs whose top class is version 1's;
* top-5 overlap: the share of version 1's five best classes that are
  among the other version's five best, averaged over the inputs;
* top-1 in top-5: the share of inputs whose version 1 top class is among
  the other version's five best;
* top-1 agreement where version 1 is sure: the same as top-1 agreement,
  over the inputs whose best class leads the second by at least 0.1 in
  probability (the others are near ties, which any rounding can flip).

The inputs are the evaluation photos of ``photos.py``, photos that the
calibration of version 3 never saw: each photo whole and as random crops
of 50 to 100 % of its area, mirrored half of the time. Every version runs
through the service's own pre-processing, interpreter runner (which
de-quantizes an int8 output) and softmax, with its own ``model.json``.

With ``--invoke-blocks N`` it also times ``invoke`` of each version on
one single-thread interpreter, in N alternating blocks of 20 invokes
(so that a shared machine's drift falls on every version alike), and
prints the median of all invokes per version.

Run it from the project root with the service's virtualenv::

    .venv/bin/python model/evaluate.py [--versions 2 3] [--per-photo N]
        [--invoke-blocks N] [--json]

``--json`` prints the same figures as one JSON object instead of
Markdown, for ``make bench``.
"""

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as ``python model/evaluate.py``: make ``app`` importable.
    sys.path.insert(0, str(ROOT))

import photos  # noqa: E402
from app.inference.postprocessing import (  # noqa: E402
    to_probabilities, top_indices)
from app.inference.preprocessing import preprocess  # noqa: E402
from app.inference.runtime import ModelRunner  # noqa: E402
from app.models.contract import read_contract  # noqa: E402

REFERENCE = 1
PER_PHOTO = 32
SEED = 1
MIN_AREA = 0.5
# Version 1's lead, in probability, over its second class for "sure".
SURE_MARGIN = 0.1
INVOKES_PER_BLOCK = 20


def parse_args(argv):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repository", type=pathlib.Path, default=ROOT / "model",
        help="model repository (default: %(default)s)")
    parser.add_argument(
        "--versions", type=int, nargs="+", default=[2, 3],
        help="versions to compare with version 1 (default: 2 3)")
    parser.add_argument(
        "--per-photo", type=int, default=PER_PHOTO,
        help="inputs made from each photo (default: %(default)s)")
    parser.add_argument(
        "--photo-cache", type=pathlib.Path,
        default=pathlib.Path(tempfile.gettempdir(), "model-photo-wheels"),
        help="folder for the wheels holding the photos "
             "(default: %(default)s)")
    parser.add_argument(
        "--invoke-blocks", type=int, default=0,
        help="also time invoke in this many alternating blocks "
             "(default: 0, no timing)")
    parser.add_argument(
        "--json", action="store_true",
        help="print the figures as one JSON object instead of Markdown")
    return parser.parse_args(argv)


class Version:
    """One model version, run as the service runs it."""

    def __init__(self, repository, number):
        """Load the version's contract and one single-thread runner."""
        folder = repository / str(number)
        self.number = number
        self.contract = read_contract(folder, number)
        self.runner = ModelRunner(folder / self.contract.file, 1)

    def probabilities(self, image):
        """Return the class probabilities for one RGB image."""
        batch = preprocess(image, self.contract.input)[None]
        return to_probabilities(self.runner.run(batch),
                                self.contract.activation)[0]


def invoke_times(versions, blocks, batch_of):
    """Return ``{version number: median invoke seconds}``.

    ``batch_of(version)`` is the input each version is timed on.
    """
    times = {version.number: [] for version in versions}
    for version in versions:
        version.runner.run(batch_of(version))  # warm up
    for _ in range(blocks):
        for version in versions:
            batch = batch_of(version)
            for _ in range(INVOKES_PER_BLOCK):
                start = time.perf_counter()
                version.runner.run(batch)
                times[version.number].append(time.perf_counter() - start)
    return {number: statistics.median(values)
            for number, values in times.items()}


def compare(reference, other):
    """Return the agreement figures of two lists of probability vectors."""
    top1 = top5 = top1_in_top5 = sure = sure_agree = 0
    disagreements = []
    for index, (expected, got) in enumerate(zip(reference, other)):
        best = top_indices(expected, 5)
        found = top_indices(got, 5)
        same = best[0] == found[0]
        top1 += same
        top5 += len(set(best) & set(found)) / 5
        top1_in_top5 += best[0] in found
        if expected[best[0]] - expected[best[1]] >= SURE_MARGIN:
            sure += 1
            sure_agree += same
        if not same:
            disagreements.append(index)
    count = len(reference)
    return {"inputs": count, "top1": top1 / count, "top5": top5 / count,
            "top1_in_top5": top1_in_top5 / count, "sure": sure,
            "sure_top1": sure_agree / sure if sure else float("nan"),
            "disagreements": disagreements}


def main(argv=None):
    """Print the agreement of each version with version 1 (and invoke times).

    As Markdown for people, or as one JSON object with ``--json``.
    """
    args = parse_args(argv)
    images = photos.image_set("evaluation", args.per_photo, SEED,
                              args.photo_cache, min_area=MIN_AREA,
                              colour=False)
    numbers = [REFERENCE] + [n for n in args.versions if n != REFERENCE]
    versions = [Version(args.repository, number) for number in numbers]
    scores = {version.number: [version.probabilities(image)
                               for _, image in images]
              for version in versions}
    agreement = {number: compare(scores[REFERENCE], scores[number])
                 for number in numbers[1:]}
    medians = {}
    if args.invoke_blocks:
        image = images[0][1]
        medians = invoke_times(
            versions, args.invoke_blocks,
            lambda version: preprocess(image, version.contract.input)[None])
    if args.json:
        print(json.dumps({
            "inputs": len(images),
            "agreement": {number: {name: value for name, value
                                   in figures.items()
                                   if name != "disagreements"}
                          for number, figures in agreement.items()},
            "invoke_seconds": medians}))
        return 0
    print_markdown(args, images, agreement, medians)
    return 0


def print_markdown(args, images, agreement, medians):
    """Print the agreement table and invoke times for people."""
    names = [photo.name for photo in photos.photos("evaluation")]
    print(f"{len(images)} inputs: {len(names)} photos x {args.per_photo} "
          f"({', '.join(names)})\n")
    print("| version | top-1 agreement | top-5 overlap | v1 top-1 in "
          f"top-5 | top-1 agreement where v1 is sure (n) |")
    print("|---|--:|--:|--:|--:|")
    details = []
    for number, figures in agreement.items():
        print(f"| {number} | {figures['top1']:.1%} | {figures['top5']:.1%} "
              f"| {figures['top1_in_top5']:.1%} | "
              f"{figures['sure_top1']:.1%} ({figures['sure']}) |")
        by_photo = {}
        for index in figures["disagreements"]:
            by_photo[images[index][0]] = by_photo.get(images[index][0], 0) + 1
        details.append(f"- version {number} differs in top-1 on: "
                       + (", ".join(f"{name} {count}" for name, count
                                    in by_photo.items()) or "none"))
    print("\n" + "\n".join(details))
    if medians:
        print(f"\nInvoke, one thread, median of {args.invoke_blocks} x "
              f"{INVOKES_PER_BLOCK} per version, alternating blocks:\n")
        for number, seconds in medians.items():
            print(f"- version {number}: {seconds * 1000:.2f} ms "
                  f"({medians[REFERENCE] / seconds:.2f}x version 1)")


if __name__ == "__main__":
    sys.exit(main())

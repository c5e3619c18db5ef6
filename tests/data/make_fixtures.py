"""Rebuild the test photos: the two PNGs and their quality-90 JPEG copies.

The PNGs are ``skimage/data/chelsea.png`` (a cat, CC0, photographed by
Stefan van der Walt) and ``skimage/data/astronaut.png`` (Eileen Collins,
NASA, public domain), taken unchanged from the scikit-image 0.26.0 wheel
(see LICENSE.md). Nothing is installed; fetch the wheel and run::

    pip download --no-deps scikit-image==0.26.0 -d /tmp/skimg
    python tests/data/make_fixtures.py /tmp/skimg/scikit_image-0.26.0-*.whl

Without a wheel argument only the JPEGs are rebuilt from the PNGs already
here. Edge-case images (rotated, grayscale, truncated, bombs...) are made
by the tests themselves so that none of them needs to be committed.
"""

import hashlib
import sys
import zipfile
from pathlib import Path

from PIL import Image

DATA_DIR = Path(__file__).resolve().parent
JPEG_QUALITY = 90

# Pinned so that a different wheel cannot silently change the test photos.
PHOTO_SHA256 = {
    "chelsea.png":
        "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "astronaut.png":
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
}


def extract_photos(wheel_path):
    """Copy the PNG photos out of a scikit-image wheel into this folder."""
    with zipfile.ZipFile(wheel_path) as wheel:
        for name in PHOTO_SHA256:
            (DATA_DIR / name).write_bytes(
                wheel.read(f"skimage/data/{name}"))


def check_photos():
    """Fail unless every PNG here is byte-identical to the pinned one."""
    for name, expected in PHOTO_SHA256.items():
        actual = hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest()
        if actual != expected:
            raise SystemExit(f"{name}: sha256 {actual}, expected {expected}")


def write_jpeg_copies():
    """Save each PNG as a JPEG beside it, at the quality the tests expect."""
    for name in PHOTO_SHA256:
        png_path = DATA_DIR / name
        with Image.open(png_path) as photo:
            photo.convert("RGB").save(
                png_path.with_suffix(".jpg"), "JPEG", quality=JPEG_QUALITY)


def main(arguments):
    """Extract the photos when given a wheel, check them, write the JPEGs."""
    if arguments:
        extract_photos(arguments[0])
    check_photos()
    write_jpeg_copies()


if __name__ == "__main__":
    main(sys.argv[1:])

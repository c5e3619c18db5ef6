"""Measure the memory and CPU that hostile images make the decoder spend.

Usage, from the project root with the project's virtualenv::

    python -m bench.decode_memory [--threads 8] [--skip-worst]

Three Markdown tables go to stdout, progress to stderr:

* memory: ``--threads`` threads at once each turn a 6300x6300 RGBA
  PNG of about 150 kB (40 Mpixels, 160 MB decoded) into the model's
  input tensor, twice, with today's-style decode (the code before the
  guards: full-size load, full-size RGBA copy, full-size RGB copy) and
  with the guarded one (reduced while converted, a decode budget), under
  several malloc settings: arenas (``mallopt(M_ARENA_MAX)``),
  ``malloc_trim`` after large decodes, a fixed mmap threshold. Peak is
  VmHWM less VmRSS just before the threads start; after is VmRSS once
  they have finished, while they still live, as a server's workers do.
* CPU: a progressive JPEG whose last scan is repeated 400 times, decoded
  without the guards (in a subprocess killed after ``--cpu-timeout``
  seconds) and with them.
* worst cases: the costliest images within the limits (10 MiB, 40
  Mpixels) that were found, decoded with the guards.

Every configuration runs in a fresh subprocess, so that each starts with
clean malloc arenas and its own peak RSS. CPU is the decoding thread's
(``time.thread_time``) in the CPU tables and the process's in the memory
table; wall time includes waiting for the budget, and for the CPU on a
shared machine.
"""

import argparse
import gc
import io
import json
import pathlib
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

if not __package__:
    # Run as ``python bench/decode_memory.py``: make ``app`` importable.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

ROOT = pathlib.Path(__file__).resolve().parent.parent
PHOTO = ROOT / "tests" / "data" / "chelsea.jpg"
MIB = 1024 * 1024
MAX_IMAGE_BYTES = 10 * MIB
MAX_IMAGE_PIXELS = 40_000_000
SPEC = {
    "name": "image", "shape": [1, 224, 224, 3], "dtype": "float32",
    "layout": "NHWC", "color": "RGB",
    "resize": {"width": 224, "height": 224, "method": "bilinear"},
    "normalization": {"mean": 127.0, "std": 128.0},
}
TARGET = (224, 224)
# Times the threads decode the image together in the memory table.
ROUNDS = 2
# A marker that ends entropy-coded data: not a stuffed 0xFF, not RSTn.
SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# The largest 40-Mpixel frame with a 4:3 shape.
BIG = (7300, 5479)
# label, decode path, malloc arenas, trim after large decodes, decode
# budget in MiB, fixed mmap threshold in bytes.
MEMORY_CONFIGS = [
    ("today's decode", "legacy", None, False, None, None),
    ("today's decode, trim", "legacy", None, True, None, None),
    ("today's decode, 2 arenas + trim", "legacy", 2, True, None, None),
    ("guarded, no budget, no trim", "guarded", None, False, None, None),
    ("guarded, no budget, trim", "guarded", None, True, None, None),
    ("guarded, budget 512 MiB, no trim", "guarded", None, False, 512, None),
    ("guarded, budget 512 MiB, trim", "guarded", None, True, 512, None),
    ("guarded, budget, 1 arena, trim", "guarded", 1, True, 512, None),
    ("guarded, budget, 2 arenas, trim", "guarded", 2, True, 512, None),
    ("guarded, budget, 4 arenas, trim", "guarded", 4, True, 512, None),
    ("guarded, budget, 2 arenas, no trim", "guarded", 2, False, 512, None),
    ("guarded, budget, mmap >= 1 MiB, no trim", "guarded", None, False,
     512, MIB),
    ("guarded, budget, mmap >= 8 MiB, no trim", "guarded", None, False,
     512, 8 * MIB),
    ("guarded, budget, 2 arenas, mmap >= 8 MiB", "guarded", 2, False,
     512, 8 * MIB),
]
# Seconds spent in malloc_trim, summed over a child's decodes.
TRIM_SECONDS = [0.0]


def parse_args(argv):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8,
                        help="concurrent decodes in the memory table")
    parser.add_argument("--side", type=int, default=6300,
                        help="width and height of the RGBA PNG")
    parser.add_argument("--cpu-timeout", type=float, default=15.0,
                        help="seconds before the unguarded decode is killed")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-worst", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    """Build the images, run every configuration, print the tables."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        return run_child(json.loads(args.child))
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        if not args.skip_memory:
            memory_table(folder, args)
        if not args.skip_cpu:
            cpu_table(folder, args)
        if not args.skip_worst:
            worst_table(folder)
    return 0


def progress(message):
    """Show progress on stderr."""
    print(message, file=sys.stderr, flush=True)


# The tables.

def memory_table(folder, args):
    """Print peak and residual RSS of concurrent large-PNG decodes."""
    progress(f"building a {args.side}x{args.side} RGBA PNG")
    path = folder / "rgba.png"
    path.write_bytes(rgba_png(args.side))
    size_kib = path.stat().st_size // 1024
    print(f"\n### {args.threads} concurrent decodes ({ROUNDS} rounds) of a "
          f"{args.side}x{args.side} RGBA PNG ({size_kib} KiB)\n")
    print("| configuration | peak RSS growth | RSS after (vs before) "
          "| CPU | in malloc_trim | wall | refused |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, path_kind, arenas, trim, budget, mmap in MEMORY_CONFIGS:
        progress(f"memory: {label}")
        result = spawn({"job": "memory", "image": str(path),
                        "path": path_kind, "arenas": arenas, "trim": trim,
                        "budget_mib": budget, "mmap_threshold": mmap,
                        "threads": args.threads})
        print(f"| {label} | {result['peak'] / MIB:.0f} MiB "
              f"| {result['after'] / MIB:+.0f} MiB "
              f"| {result['cpu']:.2f} s | {result['trim']:.2f} s "
              f"| {result['seconds']:.2f} s | {result['refused']} |")


def cpu_table(folder, args):
    """Print the CPU the repeated-scan JPEG costs before and after."""
    cases = [("6000x4500", hostile_jpeg((6000, 4500), 400)),
             ("7300x5479", hostile_jpeg(BIG, 400))]
    print("\n### Progressive JPEG, last scan repeated 400 times\n")
    print("| image | decode | CPU | result |")
    print("|---|---|---:|---|")
    for name, data in cases:
        path = folder / f"scans-{name}.jpg"
        path.write_bytes(data)
        label = f"{name}, {len(data) // 1024} KiB"
        for kind in ("legacy", "guarded"):
            progress(f"cpu: {label}, {kind}")
            job = {"job": "cpu", "image": str(path), "path": kind}
            try:
                result = spawn(job, timeout=args.cpu_timeout)
                cpu, outcome = f"{result['cpu']:.2f} s", result["outcome"]
            except subprocess.TimeoutExpired:
                cpu, outcome = f"> {args.cpu_timeout:.0f} s", "killed"
            name_of = {"legacy": "today's", "guarded": "guarded"}[kind]
            print(f"| {label} | {name_of} | {cpu} | {outcome} |")


def worst_table(folder):
    """Print the guarded decode of the costliest images found."""
    print("\n### Costliest images within 10 MiB and 40 Mpixels, "
          "guarded decode\n")
    print("| image | bytes | CPU | wall | result |")
    print("|---|---:|---:|---:|---|")
    for name, build in WORST_CASES:
        progress(f"worst: {name}")
        data = build()
        path = folder / "worst.bin"
        path.write_bytes(data)
        result = spawn({"job": "cpu", "image": str(path), "path": "guarded"})
        print(f"| {name} | {len(data) // 1024} KiB | {result['cpu']:.2f} s "
              f"| {result['seconds']:.2f} s | {result['outcome']} |")


def spawn(job, timeout=600):
    """Run one job in a fresh interpreter and return its JSON answer."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.decode_memory", "--child",
         json.dumps(job)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"child failed: {completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# What runs in the child processes.

def run_child(job):
    """Run one job in this fresh process and print its result as JSON."""
    from app.inference import memory
    if job.get("arenas"):
        memory.limit_malloc_arenas(job["arenas"])
    if job.get("mmap_threshold"):
        memory.set_mmap_threshold(job["mmap_threshold"])
    data = pathlib.Path(job["image"]).read_bytes()
    if job["job"] == "memory":
        result = measure_memory(job, data)
    else:
        result = measure_cpu(job, data)
    print(json.dumps(result))
    return 0


def make_prepare(job):
    """Return a function turning image bytes into the model's tensor."""
    from app.inference import decoding, memory
    from app.inference.decode_budget import DecodeBudget
    from app.inference.pipeline import ImageLimits, prepare_image
    from app.inference.preprocessing import preprocess

    def timed_trim():
        began = time.perf_counter()
        released = memory.release_free_memory()
        TRIM_SECONDS[0] += time.perf_counter() - began
        return released

    trim = job.get("trim", False)
    if job["path"] == "legacy":
        def prepare(data):
            tensor = preprocess(legacy_decode(data, TARGET), SPEC)
            if trim:
                timed_trim()
            return tensor
        return prepare
    decoding.release_free_memory = timed_trim if trim else lambda: False
    budget = None
    if job.get("budget_mib"):
        budget = DecodeBudget(job["budget_mib"] * MIB, wait_timeout=60)
    limits = ImageLimits(MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS,
                         decode_budget=budget)
    return lambda data: prepare_image(data, SPEC, limits)


def measure_memory(job, data):
    """Decode the image on many threads at once; return RSS growth.

    Like a server's worker threads, the threads live on: they decode
    the image ROUNDS times, all at once each time, and RSS after is read
    while they wait for more work.
    """
    from app.errors import ServiceError

    prepare = make_prepare(job)
    prepare(PHOTO.read_bytes())  # load every library before measuring
    gc.collect()
    TRIM_SECONDS[0] = 0.0
    reset_peak_rss()
    before = rss("VmRSS")
    refused = []
    count = job["threads"]
    start = threading.Barrier(count + 1)
    done = threading.Barrier(count + 1)
    finish = threading.Event()

    def work():
        for _ in range(ROUNDS):
            start.wait()
            try:
                prepare(data)
            except ServiceError as error:
                refused.append(error.code)
            done.wait()
        finish.wait()

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    began, cpu = time.perf_counter(), time.process_time()
    for _ in range(ROUNDS):
        start.wait()
        done.wait()
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    gc.collect()
    result = {"peak": rss("VmHWM") - before, "after": rss("VmRSS") - before,
              "seconds": seconds, "cpu": cpu, "trim": TRIM_SECONDS[0],
              "refused": len(refused)}
    finish.set()
    for thread in threads:
        thread.join()
    return result


def measure_cpu(job, data):
    """Decode the image once on this thread; return its CPU and outcome."""
    from app.errors import ServiceError

    prepare = make_prepare(job)
    prepare(PHOTO.read_bytes())
    began, cpu = time.perf_counter(), time.thread_time()
    try:
        prepare(data)
        outcome = "decoded"
    except ServiceError as error:
        outcome = f"{error.status} {error.code}"
    return {"cpu": time.thread_time() - cpu,
            "seconds": time.perf_counter() - began, "outcome": outcome}


def rss(field):
    """Return a VmRSS or VmHWM figure of this process, in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss():
    """Make VmHWM start again from the current RSS (Linux 4.0 and later)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")


def legacy_decode(data, target_size):
    """Decode as the service did before the guards, for comparison.

    Full-size load, EXIF transpose in place, then a full-size RGBA copy
    and a full-size RGB image to lay it on white; JPEGs are drafted.
    """
    from PIL import Image, ImageOps

    image = Image.open(io.BytesIO(data))
    if image.format in ("JPEG", "MPO"):
        width, height = target_size
        if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
            width, height = height, width
        image.draft("RGB", (width, height))
    image.load()
    ImageOps.exif_transpose(image, in_place=True)
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba)
        return background
    return image.convert("RGB")


# The images.

def encode(image, image_format, **params):
    """Return the image saved in the given format."""
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def rgba_png(side):
    """Return a fully transparent side x side RGBA PNG (150 kB at 6300)."""
    from PIL import Image
    return encode(Image.new("RGBA", (side, side), (0, 0, 0, 0)), "PNG")


def scan_spans(data):
    """Return (start, end) of each scan of a JPEG: SOS to next marker."""
    from app.inference.decoding import inspect_jpeg
    spans = []
    for start in inspect_jpeg(data, max_scans=10 ** 6).scan_offsets:
        header_end = start + 2 + int.from_bytes(data[start + 2:start + 4],
                                                "big")
        spans.append((start, SCAN_END.search(data, header_end).start()))
    return spans


def hostile_jpeg(size, repeats, scan=-1, subsampling=2, quality=1,
                 mode="RGB"):
    """Return a progressive JPEG with one of its scans repeated.

    libjpeg decodes a repeated scan again over every block of the image,
    however few bytes it has; a nearly flat, low-quality photo makes
    those scans a few dozen bytes each.
    """
    from PIL import Image

    with Image.open(PHOTO) as photo:
        image = photo.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    data = encode(image.convert(mode), "JPEG", quality=quality,
                  progressive=True, subsampling=subsampling)
    start, end = scan_spans(data)[scan]
    return data[:end] + data[start:end] * repeats + data[end:]


def png_chunk(kind, body):
    """Return one PNG chunk with its length and CRC."""
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body)))


def raw_png(size, depth, color_type, row, before=b"", after=b""):
    """Return a PNG whose every row is ``row`` (filter byte included)."""
    width, height = size
    compressor = zlib.compressobj(9)
    pieces = [compressor.compress(row) for _ in range(height)]
    pieces.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, depth, color_type,
                         0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + before
            + png_chunk(b"IDAT", b"".join(pieces)) + after
            + png_chunk(b"IEND", b""))


def many_png_chunks(where):
    """Return a small PNG padded to 10 MiB with empty unknown chunks."""
    chunk = png_chunk(b"zzZz", b"")
    count = (MAX_IMAGE_BYTES - 4096) // len(chunk)
    padding = {where: chunk * count}
    return raw_png((64, 64), 8, 2, b"\0" + bytes(192), **padding)


def rle_bmp(size, rows, rle4=False):
    """Return a run-length BMP (8 or 4 bits) made of the given rows."""
    width, height = size
    colours = 16 if rle4 else 256
    palette = b"".join(bytes((i, i, i, 0)) for i in range(colours))
    body = rows * height + b"\0\1"
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1,
                       4 if rle4 else 8, 2 if rle4 else 1, len(body),
                       2835, 2835, colours, 0)
    return (b"BM" + struct.pack("<IHHI", offset + len(body), 0, 0, offset)
            + info + palette + body)


def gradient(size, mode="RGB"):
    """Return a smooth gradient image, which compresses very well."""
    from PIL import Image
    return Image.linear_gradient("L").resize(size).convert(mode)


def jpeg_header_padding():
    """Return a photo with 9 MiB of 0xFF fill bytes before its frame."""
    photo = PHOTO.read_bytes()
    return photo[:2] + b"\xff" * (9 * MIB) + photo[2:]


def jpeg_many_segments():
    """Return a photo with 9 MiB of empty comment segments."""
    photo = PHOTO.read_bytes()
    return photo[:2] + b"\xff\xfe\x00\x02" * (9 * MIB // 4) + photo[2:]


def big_gif():
    """Return a 40-Mpixel GIF of a photo, about 8 MiB."""
    from PIL import Image
    with Image.open(PHOTO) as photo:
        image = photo.convert("RGB").resize(BIG).quantize(256)
    return encode(image, "GIF")


def animated_gif(frames):
    """Return a GIF of many full-size frames; only the first is decoded."""
    from PIL import Image
    images = [Image.new("P", (2000, 2000), index % 256)
              for index in range(frames)]
    return encode(images[0], "GIF", save_all=True,
                  append_images=images[1:], duration=10)


def big_webp(lossless):
    """Return a photo as a WebP at the WebP pixel limit (4096x4096)."""
    from PIL import Image
    with Image.open(PHOTO) as photo:
        image = photo.convert("RGB").resize((4096, 4096))
    if lossless:
        return encode(image, "WEBP", lossless=True, quality=0, method=0)
    return encode(image, "WEBP", quality=80)


def _bmp_runs(width):
    """Return one RLE row of full 255-pixel runs."""
    return (b"\xff\x07" * (width // 255) + bytes((width % 255, 7))
            + b"\0\0")


WORST_CASES = [
    ("JPEG 40 Mpx 4:4:4, 32 scans (22 tiny refinements)",
     lambda: hostile_jpeg(BIG, 22, scan=7, subsampling=0, quality=75)),
    ("JPEG 40 Mpx CMYK progressive, 18 scans",
     lambda: encode(gradient(BIG, "CMYK"), "JPEG", quality=75,
                    progressive=True, subsampling=0)),
    ("JPEG 40 Mpx CMYK, 32 scans (14 tiny refinements)",
     lambda: hostile_jpeg(BIG, 14, scan=9, subsampling=0, quality=75,
                          mode="CMYK")),
    ("JPEG, 9 MiB of fill bytes in its header", jpeg_header_padding),
    ("JPEG, 2.4 million empty comment segments", jpeg_many_segments),
    ("PNG 40 Mpx RGBA, Paeth rows",
     lambda: raw_png(BIG, 8, 6, b"\4" + bytes(4 * BIG[0]))),
    ("PNG 40 Mpx RGBA 16-bit, Paeth rows",
     lambda: raw_png(BIG, 16, 6, b"\4" + bytes(8 * BIG[0]))),
    ("PNG 40 Mpx grey 16-bit", lambda: raw_png(BIG, 16, 0,
                                               b"\1" + bytes(2 * BIG[0]))),
    ("PNG, 870k empty chunks before IDAT",
     lambda: many_png_chunks("before")),
    ("PNG, 870k empty chunks after IDAT", lambda: many_png_chunks("after")),
    ("GIF 40 Mpx photo", big_gif),
    ("GIF 2000x2000, 300 frames", lambda: animated_gif(300)),
    ("BMP RLE4 10 Mpx (at its format limit)",
     lambda: rle_bmp((3650, 2739), _bmp_runs(3650), rle4=True)),
    ("BMP RLE8 10 Mpx, end-of-line rows", lambda: rle_bmp(
        (3650, 2739), b"\1\7\0\0")),
    ("BMP RLE8 40 Mpx (over its format limit)",
     lambda: rle_bmp(BIG, b"\1\7\0\0")),
    ("WebP 16.7 Mpx lossy (at its format limit)", lambda: big_webp(False)),
    ("WebP 16.7 Mpx lossless", lambda: big_webp(True)),
]


if __name__ == "__main__":
    sys.exit(main())

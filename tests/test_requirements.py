"""Dependencies are pinned, and the pin files agree with each other."""

import re

from app.settings import PROJECT_ROOT

PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([A-Za-z0-9_.+-]+)$")
LEGACY_RUNTIME_CHANGES = {"ai-edge-litert", "tflite-runtime", "numpy"}


def read_pins(name):
    """Return ``{package: version}`` of a requirements file's own lines."""
    pins = {}
    for line in (PROJECT_ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-r "):
            continue
        match = PIN.match(line)
        assert match, f"{name}: {line!r} is not pinned with =="
        pins[match.group(1).lower()] = match.group(2)
    return pins


def test_every_requirement_is_pinned():
    """Runtime, dev, legacy-runtime and build requirements use ==."""
    for name in ("requirements.txt", "requirements-dev.txt",
                 "requirements-tflite.txt", "model/requirements-build.txt"):
        assert read_pins(name), name


def test_legacy_runtime_pins_match_the_main_ones():
    """Only the runtime and NumPy differ between the two environments."""
    main = read_pins("requirements.txt")
    main.update(read_pins("requirements-dev.txt"))
    legacy = read_pins("requirements-tflite.txt")
    for package, version in legacy.items():
        if package not in LEGACY_RUNTIME_CHANGES:
            assert main.get(package) == version, package
    runtime = set(read_pins("requirements.txt")) - LEGACY_RUNTIME_CHANGES
    assert runtime <= set(legacy)

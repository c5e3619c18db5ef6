# Container image of the word-count and image-classification service.
#
#   docker build -t wordcount .
#   docker run -d --name wordcount -p 8080:8080 -v wordcount-data:/data wordcount
#
# Two stages on the same Debian base, so the virtualenv built in the first
# links against exactly the Python 3.11 that runs it in the second, and pip,
# ensurepip, binutils and apt's lists never reach the image that is shipped.

FROM debian:bookworm-slim AS build

# python3 and python3-venv are Debian metapackages whose version is fixed for
# the life of bookworm; pinning them keeps the interpreter line stable while
# python3.11's security updates still come in through their dependencies.
# binutils (for strip, below) is bookworm's only version.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3=3.11.2-1+b1 python3-venv=3.11.2-1+b1 binutils=2.40-2 \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt /tmp/requirements.txt

# Every requirement is a pure-Python or manylinux wheel: no compiler needed.
# What the service never loads then goes, found by tracing the files that
# a running service opens (every route, both word stores, the batch CLI).
# First whole distributions: pip and setuptools once they have done their
# job; LiteRT's dependencies that only its CompiledModel API, converter
# and tools import (protobuf, ml_dtypes, flatbuffers); Jinja2, which
# swagger-ui-bundle lists but never imports.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        --no-compile -r /tmp/requirements.txt \
    && /opt/venv/bin/pip uninstall --yes --disable-pip-version-check \
        protobuf ml-dtypes flatbuffers jinja2 markupsafe pip setuptools

# Then parts of packages. Only /opt/venv leaves this stage, so what is
# deleted here takes no room in the image, whatever the layers.
# - In LiteRT, all but the classic Interpreter the service uses: its
#   module, its wrapper and the two libraries that wrapper loads (the
#   WebGPU accelerator, NPU vendor plugins, ahead-of-time compiler,
#   converter and tools serve hardware or jobs this image does not have).
# - Of Swagger UI, all but the five files /docs serves (no source maps, no
#   ES-module bundles).
# - Test suites and NumPy's test-only extension modules (_simd,
#   _multiarray_tests, ...); NumPy's build tools (f2py, numpy.distutils);
#   C headers, static libraries, Cython and typing stubs, which no import
#   reads.
# - The symbol tables and debug sections of the extension modules and
#   libraries that wheels ship unstripped (`strip --strip-unneeded`, as
#   Debian strips its own), except in the *.libs folders: auditwheel's
#   copies there come stripped, and strip corrupts those it patched
#   (NumPy's OpenBLAS would no longer load). Every shared object must
#   still load afterwards, or the build fails.
# Bytecode is compiled once, last, for what is left. Hash-based and
# unchecked: the copy into the next stage moves source mtimes (timestamp
# .pyc files would be stale there, recompiled at every start and never
# rewritten), and nothing in the image changes the virtualenv.
WORKDIR /opt/venv/lib/python3.11/site-packages
RUN find ai_edge_litert -mindepth 1 -maxdepth 1 \
        ! -name __init__.py ! -name interpreter.py ! -name 'metrics_*.py' \
        ! -name _pywrap_litert_interpreter_wrapper.so \
        ! -name libpywrap_litert_common.so ! -name libLiteRt.so \
        -exec rm -rf {} + \
    && find swagger_ui_bundle/vendor -type f ! -name swagger-ui.css \
        ! -name swagger-ui-bundle.js ! -name swagger-ui-standalone-preset.js \
        ! -name 'favicon-*.png' -delete \
    && rm -rf cheroot/test numpy/distutils numpy/f2py numpy/_pyinstaller \
        numpy/conftest.py numpy/_core/include numpy/_core/lib \
        numpy/random/lib numpy/random/_examples numpy/_core/_simd.*.so \
        numpy/_core/_*_tests.*.so \
        /opt/venv/bin/f2py /opt/venv/bin/litert-benchmark \
    && find . -depth -type d -name tests -exec rm -rf {} + \
    && find . -type f \( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' \
        -o -name '*.h' -o -name '*.a' \) -delete \
    && find . -path './*.libs' -prune -o -type f -name '*.so*' \
        -exec strip --strip-unneeded {} + \
    && /opt/venv/bin/python -c 'import ctypes, pathlib; \
        [ctypes.CDLL(str(p)) for p in sorted(pathlib.Path().rglob("*.so*"))]' \
    && /opt/venv/bin/python -m compileall -q -j 0 \
        --invalidation-mode unchecked-hash .

FROM debian:bookworm-slim

# Only the interpreter the virtualenv points at (/usr/bin/python3): no pip,
# no venv tooling, no compilers; and the CA certificates that HTTPS image
# URLs are checked against. They follow Mozilla's list in Debian's point
# releases, so a pin would break the build when the mirror moves on. The
# service runs as an unprivileged numeric user that owns nothing but the
# data volume.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=3.11.2-1+b1 \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 wordcount \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin wordcount \
    && mkdir /data \
    && chown 10001:10001 /data

COPY --from=build /opt/venv /opt/venv

# Application code and model stay owned by root: the service cannot
# modify what it serves.
WORKDIR /srv/wordcount
COPY api.py setup.cfg ./
COPY app ./app
COPY model ./model
# Bytecode compiled once, as for the virtualenv: the service's own modules
# would otherwise be compiled at every start (the image is read-only to
# the service, and PYTHONDONTWRITEBYTECODE is set).
RUN python3 -m compileall -q --invalidation-mode unchecked-hash api.py app

# Settings are environment variables only (APP_<NAME> overrides setup.cfg);
# inside a container the service must listen on every interface.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_HOST=0.0.0.0 \
    APP_PORT=8080 \
    APP_SQLITE_PATH=/data/words.sqlite3

USER 10001:10001
VOLUME /data
EXPOSE 8080

# Ready means the store answers and the default model version is loaded and
# warm; the other versions load in the background (GET /models shows them).
# The image has no curl, so the check is a Python one-liner.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('APP_PORT', '8080'), timeout=4)"]

# Exec form: Python is PID 1 and receives SIGTERM from `docker stop`, which
# the service answers by finishing in-flight requests and exiting 0.
CMD ["/opt/venv/bin/python", "api.py"]

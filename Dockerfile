# Container image of the word-count and image-classification service.
#
#   docker build -t wordcount .
#   docker run -d --name wordcount -p 8080:8080 -v wordcount-data:/data wordcount
#
# Two stages on the same Debian base, so the virtualenv built in the first
# links against exactly the Python 3.11 that runs it in the second, and pip,
# ensurepip and apt's lists never reach the image that is shipped.

FROM debian:bookworm-slim AS build

# python3 and python3-venv are Debian metapackages whose version is fixed for
# the life of bookworm; pinning them keeps the interpreter line stable while
# python3.11's security updates still come in through their dependencies.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3=3.11.2-1+b1 python3-venv=3.11.2-1+b1 \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt /tmp/requirements.txt

# Every requirement is a pure-Python or manylinux wheel: no compiler needed.
# Then what the service never loads goes: pip and setuptools once they have
# done their job, NumPy's own test suite (17 MB), and LiteRT's WebGPU
# accelerator, NPU vendor plugins and ahead-of-time compiler (31 MB), which
# serve hardware a CPU-only container does not have; the classic
# Interpreter the service uses runs on the CPU without them.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        -r /tmp/requirements.txt \
    && /opt/venv/bin/pip uninstall --yes --disable-pip-version-check \
        pip setuptools \
    && find /opt/venv/lib -depth -type d -name tests -path '*/numpy/*' \
        -exec rm -rf {} + \
    && litert=/opt/venv/lib/python3.11/site-packages/ai_edge_litert \
    && rm -rf "$litert/libLiteRtWebGpuAccelerator.so" "$litert/vendors" \
        "$litert/tools/apply_plugin_main"


FROM debian:bookworm-slim

# Only the interpreter the virtualenv points at (/usr/bin/python3): no pip,
# no venv tooling, no compilers. The service runs as an unprivileged numeric
# user that owns nothing but the data volume.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=3.11.2-1+b1 \
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

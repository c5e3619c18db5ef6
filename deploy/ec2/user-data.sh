#!/bin/bash
# EC2 user data for Amazon Linux 2023: install Docker and run the service
# image on port 80. cloud-init runs it once, as root, at first boot; its
# output is in /var/log/cloud-init-output.log.
#
# Set IMAGE to the repository the image was pushed to. Nothing secret goes
# here: user data is readable by anything on the instance through the
# instance metadata service. A private image needs `docker login` by hand.
#
# MODE picks the topology:
#   single  (default) one container, words in SQLite in a named volume;
#   compose compose.yaml: nginx on port 80 in front of three replicas that
#           share Redis (append-only file in a volume). It needs BUNDLE_URL,
#           a .tar.gz of this repository (GitHub's archive of a branch or
#           tag will do) for compose.yaml and deploy/nginx/, and an
#           instance with 4 GiB or more (t3.medium): each replica takes
#           about 360 MiB once warm.
set -euo pipefail

IMAGE=docker.io/YOURUSER/wordcount:latest
MODE="${MODE:-single}"
BUNDLE_URL="${BUNDLE_URL:-https://github.com/YOURUSER/wordcount/archive/refs/heads/main.tar.gz}"
# The Compose plugin is not packaged for Amazon Linux 2023: it comes from
# Docker's releases, checked against the checksum published with it.
COMPOSE_VERSION=v2.29.7
NAME=wordcount
VOLUME=wordcount-data
PROJECT_DIR=/opt/wordcount

case "$MODE" in
    single|compose) ;;
    *) echo "MODE must be single or compose, not $MODE" >&2; exit 1 ;;
esac

# The network can still be settling at first boot: retry a few times
# rather than leave an instance without its service.
retry() {
    local attempt
    for attempt in 1 2 3 4 5; do
        if "$@"; then
            return 0
        fi
        if [ "$attempt" = 5 ]; then
            echo "failed five times: $*" >&2
            return 1
        fi
        sleep $((attempt * 10))
    done
}

install_compose() {
    local arch plugins expected actual
    arch=$(uname -m)
    plugins=/usr/local/lib/docker/cli-plugins
    mkdir -p "$plugins"
    local url="https://github.com/docker/compose/releases/download/$COMPOSE_VERSION/docker-compose-linux-$arch"
    retry curl -fsSL -o "$plugins/docker-compose" "$url"
    expected=$(retry curl -fsSL "$url.sha256" | cut -d' ' -f1)
    actual=$(sha256sum "$plugins/docker-compose" | cut -d' ' -f1)
    if [ "$expected" != "$actual" ]; then
        echo "docker compose $COMPOSE_VERSION: checksum mismatch" >&2
        exit 1
    fi
    chmod 755 "$plugins/docker-compose"
}

dnf install -y docker
if [ "$MODE" = compose ]; then
    # Logs of every container capped at three files of 10 MB, so that a
    # long-running instance does not fill its disk.
    mkdir -p /etc/docker
    cat > /etc/docker/daemon.json <<'EOF'
{"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}}
EOF
fi
# enable: the daemon, and with it the containers (restart unless-stopped),
# comes back after a reboot.
systemctl enable --now docker

if [ "$MODE" = compose ]; then
    install_compose
    mkdir -p "$PROJECT_DIR"
    retry curl -fsSL -o /tmp/wordcount.tar.gz "$BUNDLE_URL"
    tar -xzf /tmp/wordcount.tar.gz -C "$PROJECT_DIR" --strip-components=1 \
        --wildcards '*/compose.yaml' '*/deploy/nginx/*'
    rm -f /tmp/wordcount.tar.gz
    cd "$PROJECT_DIR"
    export WORDCOUNT_IMAGE="$IMAGE"
    retry docker compose pull
    # The Redis data lives in the volume wordcount_redis-data: a new image
    # (docker compose pull, then up -d again) keeps the words.
    docker compose up -d --no-build
    exit 0
fi

retry docker pull "$IMAGE"

# The SQLite file lives in a named volume, so a new image (docker pull, then
# docker rm -f and this docker run again) keeps the words. Logs are capped
# so that a long-running instance does not fill its disk.
docker volume create "$VOLUME"
docker rm -f "$NAME" 2>/dev/null || true
# --stop-timeout: the service drains for 5 s after SIGTERM, then lets
# in-flight requests finish within 10 s.
docker run -d --name "$NAME" --restart unless-stopped --stop-timeout 20 \
    -p 80:8080 -v "$VOLUME:/data" \
    --log-opt max-size=10m --log-opt max-file=3 \
    "$IMAGE"

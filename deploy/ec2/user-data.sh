#!/bin/bash
# EC2 user data for Amazon Linux 2023: install Docker and run the service
# image on port 80. cloud-init runs it once, as root, at first boot; its
# output is in /var/log/cloud-init-output.log.
#
# Set IMAGE to the repository the image was pushed to. Nothing secret goes
# here: user data is readable by anything on the instance through the
# instance metadata service. A private image needs `docker login` by hand.
set -euo pipefail

IMAGE=docker.io/YOURUSER/wordcount:latest
NAME=wordcount
VOLUME=wordcount-data

dnf install -y docker
# enable: the daemon, and with it the container (--restart unless-stopped),
# comes back after a reboot.
systemctl enable --now docker

# The network can still be settling at first boot: retry the pull a few
# times rather than leave an instance without its service.
for attempt in 1 2 3 4 5; do
    if docker pull "$IMAGE"; then
        break
    fi
    if [ "$attempt" = 5 ]; then
        echo "could not pull $IMAGE" >&2
        exit 1
    fi
    sleep $((attempt * 10))
done

# The SQLite file lives in a named volume, so a new image (docker pull, then
# docker rm -f and this docker run again) keeps the words. Logs are capped
# so that a long-running instance does not fill its disk.
docker volume create "$VOLUME"
docker rm -f "$NAME" 2>/dev/null || true
docker run -d --name "$NAME" --restart unless-stopped \
    -p 80:8080 -v "$VOLUME:/data" \
    --log-opt max-size=10m --log-opt max-file=3 \
    "$IMAGE"

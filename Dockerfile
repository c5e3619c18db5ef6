# Container image of the service (bind 0.0.0.0 inside, port 8080).
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /srv
COPY requirements.txt ./
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt
COPY api.py setup.cfg ./
COPY app ./app
COPY model ./model
ENV APP_HOST=0.0.0.0 APP_SQLITE_PATH=/data/words.sqlite3
EXPOSE 8080
CMD ["/opt/venv/bin/python", "api.py"]

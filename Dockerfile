# syntax=docker/dockerfile:1
# The Portico image: `portico api` and `portico worker` (see docker-compose.yml).
# Only what .dockerignore lets through reaches the build: the packages, pyproject.toml and README.md.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/portico
WORKDIR /src
COPY . .
RUN /opt/portico/bin/pip install .


FROM python:3.11-slim-bookworm
ENV PATH=/opt/portico/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORTICO_ENVIRONMENT=production \
    PORTICO_DATA_DIR=/var/lib/portico
# poppler-utils: pdftoppm draws the pages of the placement editor and the client's "where you sign" view.
RUN apt-get update \
    && apt-get install -y --no-install-recommends poppler-utils \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 portico \
    && useradd --system --uid 10001 --gid portico --home-dir /home/portico --create-home \
        --shell /usr/sbin/nologin portico \
    && mkdir -p /var/lib/portico \
    && chown portico:portico /var/lib/portico \
    && chmod 0700 /var/lib/portico
COPY --from=build /opt/portico /opt/portico
# Portico's data folder (encrypted documents); a new named volume starts with this owner and mode.
VOLUME ["/var/lib/portico"]
# A working directory without a .env file: settings come from the environment only.
WORKDIR /home/portico
USER portico:portico
EXPOSE 8000
ENTRYPOINT ["portico"]
CMD ["api", "--host", "0.0.0.0"]

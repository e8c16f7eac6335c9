#!/bin/sh
# Runs once, when the postgres-data volume is first initialised (docker-entrypoint-initdb.d).
# Two least-privilege roles instead of the superuser:
#   portico   owns the `portico` database (Portico's tables);
#   temporal  may create databases: temporal-schema creates `temporal` and `temporal_visibility`.
# Changing DB_*_PASSWORD later does not change these roles: use ALTER ROLE ... PASSWORD.
set -eu
: "${DB_PORTICO_PASSWORD:?}" "${DB_TEMPORAL_PASSWORD:?}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=portico_password="$DB_PORTICO_PASSWORD" \
    --set=temporal_password="$DB_TEMPORAL_PASSWORD" <<'SQL'
CREATE ROLE portico LOGIN PASSWORD :'portico_password';
CREATE DATABASE portico OWNER portico;
REVOKE ALL ON DATABASE portico FROM PUBLIC;
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
SQL

#!/bin/sh
# One-shot (service `temporal-schema`): creates Temporal's two databases in PostgreSQL and brings
# their schemas up to the version this admin-tools image ships. Safe to run on every `up`: an
# existing database is kept and update-schema only applies the versions it is missing.
# Keep the admin-tools tag equal to the temporalio/server tag in docker-compose.yml.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
PORT="${DB_PORT:-5432}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

sql_tool() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$PORT" -u "$POSTGRES_USER" "$@"
}

echo "waiting for PostgreSQL at $POSTGRES_SEEDS:$PORT"
nc -z -w 10 "$POSTGRES_SEEDS" "$PORT"

for pair in temporal:temporal temporal_visibility:visibility; do
    database=${pair%%:*}
    schema=${pair##*:}
    echo "setting up database $database"
    # An existing database is fine; any other problem makes the next step fail loudly.
    sql_tool --db "$database" create || echo "database $database not created (it may exist already)"
    sql_tool --db "$database" setup-schema -v 0.0
    sql_tool --db "$database" update-schema -d "$SCHEMA_DIR/$schema/versioned"
done
echo "Temporal schemas are up to date"

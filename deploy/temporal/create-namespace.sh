#!/bin/sh
# One-shot (service `temporal-namespace`): registers Portico's Temporal namespace once the server
# answers; does nothing when the namespace already exists.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${NAMESPACE:?}"
RETENTION="${NAMESPACE_RETENTION:-720h}"

host=${TEMPORAL_ADDRESS%:*}
port=${TEMPORAL_ADDRESS##*:}
# Talk to the server's IPv4 address: the name can also resolve to an IPv6 address it does not bind.
ip=$(getent ahosts "$host" 2>/dev/null | awk '/STREAM/ && $1 ~ /^[0-9.]+$/ { print $1; exit }' || true)
address="${ip:-$host}:$port"

tries=0
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
        echo "Temporal at $address did not become healthy" >&2
        exit 1
    fi
    sleep 2
done

if temporal operator namespace describe --namespace "$NAMESPACE" --address "$address" >/dev/null 2>&1; then
    echo "namespace $NAMESPACE already exists"
else
    temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" --address "$address"
    echo "namespace $NAMESPACE created (retention $RETENTION)"
fi

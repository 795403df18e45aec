#!/usr/bin/env bash
# Starts a single-node Garage (a production S3-compatible store) on 127.0.0.1 for the S3
# interop tests, and writes the variables they read to an env file.
#
#   scripts/garage-start.sh && . "${ETL_GARAGE_STATE:-/tmp/etl-garage}/env"
#   cargo test -p etl-workers --test it garage
#
# - `garage` from PATH or ~/.cargo/bin, else `cargo install garage --locked` (about 9 minutes
#   on 2 cores, run at the lowest priority; the binary stays in ~/.cargo/bin for next time);
# - config in $ETL_GARAGE_STATE (default /tmp/etl-garage): sqlite metadata,
#   replication_factor 1, RPC, S3 API and admin API on free 127.0.0.1 ports;
# - the server runs in the background (pid in $ETL_GARAGE_STATE/garage.pid, log beside it);
#   the layout is assigned and applied, a key and a bucket with read/write/owner rights made;
# - $ETL_GARAGE_STATE/env (mode 600) exports ETL_GARAGE_ENDPOINT, ETL_GARAGE_REGION,
#   ETL_GARAGE_ACCESS_KEY_ID, ETL_GARAGE_SECRET_ACCESS_KEY and ETL_GARAGE_BUCKET.
# Idempotent: a Garage already running from that state directory is reused.
# Stop it with `kill "$(cat /tmp/etl-garage/garage.pid)"`.
set -euo pipefail

STATE="${ETL_GARAGE_STATE:-/tmp/etl-garage}"
BUCKET="${ETL_GARAGE_BUCKET:-etlproj}"
REGION="${ETL_GARAGE_REGION:-garage}"
KEY_NAME=etl-tests

say() { echo "garage-start.sh: $*"; }

find_garage() {
    command -v garage 2>/dev/null && return 0
    [ -x "$HOME/.cargo/bin/garage" ] && echo "$HOME/.cargo/bin/garage" && return 0
    return 1
}

if ! GARAGE="$(find_garage)"; then
    say "garage not found; building it: nice -n 19 cargo install garage --locked (about 9 minutes)"
    nice -n 19 cargo install garage --locked --quiet
    GARAGE="$(find_garage)" || { say "cargo install finished but no garage binary was found" >&2; exit 1; }
fi
say "using $GARAGE ($("$GARAGE" --version 2>/dev/null | head -1))"

mkdir -p "$STATE"
chmod 700 "$STATE"
CONFIG="$STATE/garage.toml"
g() { "$GARAGE" -c "$CONFIG" "$@"; }

if [ -f "$STATE/garage.pid" ] && kill -0 "$(cat "$STATE/garage.pid")" 2>/dev/null && [ -f "$STATE/env" ]; then
    say "Garage (pid $(cat "$STATE/garage.pid")) already runs from $STATE; reusing it"
    grep -v SECRET "$STATE/env"
    exit 0
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
RPC_PORT="$(free_port)"
S3_PORT="$(free_port)"
ADMIN_PORT="$(free_port)"
while [ "$S3_PORT" = "$RPC_PORT" ]; do S3_PORT="$(free_port)"; done
while [ "$ADMIN_PORT" = "$RPC_PORT" ] || [ "$ADMIN_PORT" = "$S3_PORT" ]; do ADMIN_PORT="$(free_port)"; done

rm -rf "$STATE/meta" "$STATE/data"
umask 077
cat > "$CONFIG" <<CONF
metadata_dir = "$STATE/meta"
data_dir = "$STATE/data"
db_engine = "sqlite"
replication_factor = 1

rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(openssl rand -hex 32)"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$S3_PORT"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
admin_token = "$(openssl rand -base64 32)"
CONF

RUST_LOG="${GARAGE_LOG:-garage=warn}" "$GARAGE" -c "$CONFIG" server > "$STATE/garage.log" 2>&1 &
echo $! > "$STATE/garage.pid"

node_id=""
for _ in $(seq 1 100); do
    if ! kill -0 "$(cat "$STATE/garage.pid")" 2>/dev/null; then
        say "garage server exited; log:" >&2
        cat "$STATE/garage.log" >&2 || true
        exit 1
    fi
    if g status >/dev/null 2>&1; then
        node_id="$(g node id -q 2>/dev/null | cut -d@ -f1)"
        [ -n "$node_id" ] && break
    fi
    sleep 0.2
done
[ -n "$node_id" ] || { say "garage did not answer on its RPC port; log:" >&2; cat "$STATE/garage.log" >&2; exit 1; }

g layout assign -z dc1 -c 2G "$node_id" >/dev/null
g layout apply --version 1 >/dev/null
g bucket create "$BUCKET" >/dev/null
key_info="$(g key create "$KEY_NAME")"
KEY_ID="$(printf '%s\n' "$key_info" | awk -F': *' '/^Key ID/ {print $2; exit}')"
SECRET="$(printf '%s\n' "$key_info" | awk -F': *' '/^Secret key/ {print $2; exit}')"
if [ -z "$KEY_ID" ] || [ -z "$SECRET" ]; then
    say "could not read the key id and secret from 'garage key create'" >&2
    exit 1
fi
g bucket allow --read --write --owner "$BUCKET" --key "$KEY_NAME" >/dev/null

# The S3 API answers once the layout is live: wait for any HTTP answer on its port.
for _ in $(seq 1 50); do
    curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && break
    sleep 0.2
done

cat > "$STATE/env" <<ENV
export ETL_GARAGE_ENDPOINT=http://127.0.0.1:$S3_PORT
export ETL_GARAGE_REGION=$REGION
export ETL_GARAGE_ACCESS_KEY_ID=$KEY_ID
export ETL_GARAGE_SECRET_ACCESS_KEY=$SECRET
export ETL_GARAGE_BUCKET=$BUCKET
ENV
chmod 600 "$STATE/env"
say "Garage (pid $(cat "$STATE/garage.pid")) on http://127.0.0.1:$S3_PORT, region $REGION, bucket $BUCKET, key $KEY_ID"
say "variables in $STATE/env (source it; the secret is only there)"

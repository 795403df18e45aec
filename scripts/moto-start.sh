#!/usr/bin/env bash
# Installs (if needed) and starts moto's server on 127.0.0.1 for the `etl setup aws` tests
# (S3, SQS, SNS in one process; S3 notifications reach SQS and start with s3:TestEvent).
#
#   scripts/moto-start.sh
#   ETL_MOTO_ENDPOINT=http://127.0.0.1:5055 cargo test -p etl-workers --test it aws_setup
#
# Port: ETL_MOTO_PORT (default 5055). Pid and log in ${ETL_MOTO_STATE:-/tmp/etl-moto}.
# Stop it with `kill "$(cat /tmp/etl-moto/moto.pid)"`. Idempotent: a server already
# answering on the port is left alone. Exit 2 when moto cannot be installed or started.
set -euo pipefail

PORT="${ETL_MOTO_PORT:-5055}"
STATE="${ETL_MOTO_STATE:-/tmp/etl-moto}"

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

if port_open; then
    echo "moto-start.sh: something already listens on 127.0.0.1:$PORT; leaving it alone"
    exit 0
fi

if ! python3 -c 'import moto.server, flask_cors' >/dev/null 2>&1; then
    echo "moto-start.sh: installing moto[server]"
    python3 -m pip install --quiet "moto[server]>=5" || {
        echo "moto-start.sh: could not install moto[server]" >&2
        exit 2
    }
fi

mkdir -p "$STATE"
nohup python3 -m moto.server -H 127.0.0.1 -p "$PORT" >"$STATE/moto.log" 2>&1 &
echo $! >"$STATE/moto.pid"
for _ in $(seq 1 50); do
    if port_open; then
        echo "moto-start.sh: moto listens on 127.0.0.1:$PORT (pid $(cat "$STATE/moto.pid"))"
        exit 0
    fi
    sleep 0.2
done
echo "moto-start.sh: moto did not start; see $STATE/moto.log" >&2
tail -20 "$STATE/moto.log" >&2 || true
exit 2

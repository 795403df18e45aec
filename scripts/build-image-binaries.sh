#!/bin/sh
# Builds the worker binaries exactly as the container image does:
# docker/Dockerfile copies and RUNs this script, CI runs it too, so the two
# cannot drift. Output: target/dist/{etl,agg,ftp-etl,ftp-watch,etl-notify}.
# Extra cargo arguments (e.g. --target-dir DIR) are passed through.
set -eu
cd "$(dirname "$0")/.."
exec cargo build --profile dist --locked --bins -p etl-workers "$@"

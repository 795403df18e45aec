#!/bin/sh
# `make bench`: etl against polars, duckdb, pyarrow and pandas, plus the S3 scenarios
# (per event, agg, sweep); writes BENCHMARKS.md and bench/chart.png from one run.
# Needs the Rust toolchain, python3 (with venv) and network access to PyPI.
# Inputs are generated once under bench/data/ (about 1.2 GB); BENCH_ROUNDS (default 3)
# and BENCH_EVENTS (default 20) set the repetitions.
# Optional section (BENCH_FTP=0 skips it): the cost of one ftp-watch poll over
# BENCH_FTP_FILES (10000) files with BENCH_FTP_RTT_MS (10) ms per round trip, with and
# without MLSD, against the seed's LIST (crates/etl-ftp/examples/poll_bench.rs); written to
# bench/ftp-poll.md. The first poll without MLSD sends one MDTM per file: minutes.
set -eu
cd "$(dirname "$0")/.."

echo "== building target/dist (fat LTO: several minutes)"
scripts/build-image-binaries.sh
cargo build --profile dist --locked -p etl-demo --bin etl-s3-server

if [ ! -x /usr/bin/time ]; then
    echo "== installing GNU time"
    if [ "$(id -u)" = 0 ]; then apt-get install -y time; else sudo apt-get install -y time; fi
fi

if [ ! -x bench/venv/bin/python ]; then
    echo "== creating bench/venv"
    python3 -m venv bench/venv
fi
bench/venv/bin/pip install -q --disable-pip-version-check pyarrow polars duckdb pandas boto3 matplotlib

if [ "${BENCH_FTP:-1}" != 0 ]; then
    echo "== ftp-watch: cost of a poll (crates/etl-ftp/examples/poll_bench.rs)"
    cargo build --release --locked -p etl-ftp --example poll_bench
    target/release/examples/poll_bench --files "${BENCH_FTP_FILES:-10000}" \
        --rtt-ms "${BENCH_FTP_RTT_MS:-10}" | tee bench/ftp-poll.md
fi

echo "== running (bench/run.py)"
exec bench/venv/bin/python bench/run.py

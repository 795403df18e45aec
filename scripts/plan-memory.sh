#!/usr/bin/env bash
# Peak RSS of `etl` (release) against the memory limit `etl --plan` suggests, on inputs of
# several sizes and shapes served by etl-s3-server; prints a Markdown table. Exits 1 when a
# peak reaches its planned limit. PLAN_MEMORY_DIR keeps the generated inputs (several GB)
# between runs; PLAN_MEMORY_QUICK=1 uses small inputs only.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
TARGET_DIR=$($CARGO metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
$CARGO build --release -p etl-workers --bin etl
$CARGO build -p etl-demo --bin etl-s3-server
WORK=${PLAN_MEMORY_DIR:-$(mktemp -d)}
mkdir -p "$WORK"
if [ -z "${PLAN_MEMORY_DIR:-}" ]; then
  trap 'rm -rf "$WORK"' EXIT
fi
QUICK=()
if [ "${PLAN_MEMORY_QUICK:-0}" = 1 ]; then
  QUICK=(--quick)
fi
python3 scripts/plan-memory.py "$TARGET_DIR/release/etl" "$TARGET_DIR/debug/etl-s3-server" "$WORK" "${QUICK[@]}"

#!/usr/bin/env bash
# Fuzzes etl-event's payload parsers (crates/etl-event/fuzz, target `parse`).
#
# Needs a nightly toolchain (cargo-fuzz builds with sanitizers); without one it says
# so and exits 0. Installs cargo-fuzz when missing. FUZZ_SECONDS (default 60) bounds
# the run; extra arguments go to libFuzzer (e.g. -jobs=2).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${FUZZ_SECONDS:-60}"

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz-event: no nightly toolchain (rustup toolchain install nightly); skipping" >&2
    exit 0
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-event: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

cd "$root/crates/etl-event"

# Seed the corpus with the recorded payloads so that the fuzzer starts from real shapes.
corpus="fuzz/corpus/parse"
mkdir -p "$corpus"
find "$root/testdata/events" -name '*.json' -exec cp {} "$corpus/" \;

exec cargo +nightly fuzz run parse "$corpus" -- -max_total_time="$seconds" "$@"

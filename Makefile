# Every target works on a fresh machine with the Rust toolchain and python3.
.PHONY: demo test lint realworld csv-eval manifests bench plan-memory image image-binaries fuzz deploy clean

CARGO ?= cargo
# Where cargo puts binaries, whatever CARGO_TARGET_DIR or .cargo/config says.
TARGET_DIR = $(shell $(CARGO) metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

## demo: the whole pipeline locally: an S3-compatible server on 127.0.0.1, the seed's files, etl, agg
demo:
	$(CARGO) build --quiet --bins -p etl-workers
	$(CARGO) run --quiet -p etl-demo --bin etl-demo -- testdata

## test: every test: unit, integration (real S3 and FTP servers in-process), manifests and their contract
test:
	$(CARGO) test --workspace
	# cargo test built the binaries for the integration tests: reuse them.
	scripts/check-manifests.sh "$(TARGET_DIR)/debug"
	python3 scripts/check-realworld.py "$(TARGET_DIR)/debug"

## realworld: testdata/realworld/ converted by etl and compared with pyarrow, column by column
realworld:
	$(CARGO) build --bins -p etl-workers
	python3 scripts/check-realworld.py "$(TARGET_DIR)/debug"

## csv-eval: held-out evaluation: ~380 generated real-world-shaped CSV files (in /tmp) read by etl, polars
## and DuckDB, compared with pyarrow column by column (a few minutes; not part of test)
CSV_EVAL_DIR ?= /tmp/etl-csv-eval
csv-eval:
	$(CARGO) build --bins -p etl-workers
	python3 -c 'import polars, duckdb' 2>/dev/null || python3 -m pip install --user --quiet polars duckdb
	python3 scripts/csv-eval/generate.py "$(CSV_EVAL_DIR)"
	python3 scripts/csv-eval/evaluate.py "$(CSV_EVAL_DIR)" "$(TARGET_DIR)/debug/etl"

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## manifests: schema check of workflows/ and the Sensor -> command line contract
manifests:
	$(CARGO) build --bins -p etl-workers
	scripts/check-manifests.sh "$(TARGET_DIR)/debug"

## bench: speed and memory against pyarrow, polars, duckdb, pandas (writes BENCHMARKS.md); the cost of an ftp-watch poll (bench/ftp-poll.md)
bench:
	scripts/bench.sh

## plan-memory: peak RSS of etl on several sizes and shapes against the memory limit etl --plan suggests
plan-memory:
	scripts/plan-memory.sh

## image-binaries: the release binaries exactly as docker/Dockerfile builds them
image-binaries:
	scripts/build-image-binaries.sh

## image: the container image (needs a Docker engine)
image:
	docker build -f docker/Dockerfile -t $${IMAGE:-ghcr.io/etlproj/etl:dev} .

## fuzz: the notification parser under cargo-fuzz (FUZZ_SECONDS, default 60)
fuzz:
	scripts/fuzz-event.sh

## deploy: apply workflows/ (= workflows/overlays/ftp: MinIO + FTP, development) to the current kubectl context (see docs/deploy.md)
deploy:
	kubectl apply -k workflows/

clean:
	$(CARGO) clean

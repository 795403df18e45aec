#!/usr/bin/env python3
"""Peak memory of `etl` against the limit `etl --plan` suggests, on inputs of several sizes
and shapes, converted from a local S3-compatible server as a pod converts them.

Usage: plan-memory.py ETL ETL_S3_SERVER WORKDIR [--quick] [--generate-only]
(PLAN_MEMORY_ONLY=seed-60.csv,wide-900.csv measures only those objects; PLAN_MEMORY_CORES=2
only with 2 cores.)

Generates the inputs in WORKDIR (streaming, a few GB at most), serves them with
etl-s3-server, asks `etl --plan` for each object's suggested memory limit, converts each
with `etl --bucket --key` (Parquet, the default) under 1 and 2 cores (taskset), and prints
a Markdown table: planned limit, measured peak RSS (wait4's ru_maxrss), headroom. Exits 1
when a peak is above its planned limit. Measures; asserts nothing about speed.
"""

import gzip
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

MIB = 1 << 20
BUCKET = "plan"


def write_until(path: Path, size: int, make_block, opener=open) -> int:
    """Writes blocks of rows until the file holds `size` bytes (uncompressed); after 16
    distinct blocks they repeat (generating is slower than converting)."""
    written = 0
    blocks = []
    with opener(path, "wb") as out:
        while written < size:
            if len(blocks) < 16:
                blocks.append(make_block())
            block = blocks[(written // max(1, len(blocks[0]))) % len(blocks)]
            out.write(block)
            written += len(block)
    return written


def seed_block(state={"i": 0}):
    rows = []
    for _ in range(20000):
        state["i"] += 1
        i = state["i"]
        rows.append(f"{i},{(i * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFF:012x},{i % 1000}\n")
    return "".join(rows).encode()


def mixed_block(state={"i": 0}):
    """20 columns: ints, floats, timestamps with zones, dates, booleans, quoted text."""
    rng = random.Random(state["i"])
    rows = []
    if state["i"] == 0:
        rows.append(",".join(f"c{j}" for j in range(20)) + "\n")
    for _ in range(5000):
        state["i"] += 1
        i = state["i"]
        fields = [
            str(i),
            f"{rng.random() * 1000:.3f}",
            f"2023-04-{i % 28 + 1:02d}T{i % 24:02d}:{i % 60:02d}:{i % 60:02d}Z",
            f"2024-01-{i % 28 + 1:02d}",
            "true" if i % 2 else "false",
            f'"text, with a comma {i % 977}"',
            f'"a ""quoted"" word {rng.randint(0, 10**6)}"',
            str(rng.randint(-(10**9), 10**9)),
            f"{rng.gauss(0, 1):.6f}",
            f"name{i % 5000}",
        ]
        fields += [f"{rng.randint(0, 10**6)}" for _ in range(5)]
        fields += [f"label{rng.randint(0, 300)}" for _ in range(5)]
        rows.append(",".join(fields) + "\n")
    return "".join(rows).encode()


def wide_block(state={"i": 0}):
    """120 columns of numbers and short text."""
    rng = random.Random(state["i"])
    rows = []
    if state["i"] == 0:
        rows.append(",".join(f"w{j}" for j in range(120)) + "\n")
    for _ in range(1000):
        state["i"] += 1
        fields = []
        for j in range(120):
            if j % 3 == 0:
                fields.append(str(rng.randint(0, 10**6)))
            elif j % 3 == 1:
                fields.append(f"{rng.random():.4f}")
            else:
                fields.append(f"t{rng.randint(0, 99)}")
        rows.append(",".join(fields) + "\n")
    return "".join(rows).encode()


def max_record(path: Path, limit: int) -> int:
    """Seed rows with one record just under the default --max-record-bytes in the middle."""
    with open(path, "wb") as out:
        for i in range(1, 100001):
            out.write(f"{i},n{i},{i % 100}\n".encode())
        out.write(b"100001," + b"y" * (limit - 20) + b",5\n")
        for i in range(100002, 200001):
            out.write(f"{i},n{i},{i % 100}\n".encode())
    return path.stat().st_size


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_measured(cmd, env, cores):
    """Runs `cmd` pinned to `cores` CPUs; returns (exit code, peak RSS bytes, stderr tail)."""
    cpus = ",".join(str(c) for c in range(cores))
    proc = subprocess.Popen(["taskset", "-c", cpus, *cmd], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss * 1024, stderr.decode(errors="replace")[-300:]


def quantity(text: str) -> int:
    for suffix, scale in (("Gi", 1 << 30), ("Mi", 1 << 20)):
        if text.endswith(suffix):
            return int(text[: -len(suffix)]) * scale
    return int(text)


def main():
    etl, server_bin, work = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    quick = "--quick" in sys.argv
    root = work / "s3"
    data = root / BUCKET / "input"
    data.mkdir(parents=True, exist_ok=True)

    cases = []  # (name, key, shape)
    sizes = [8 * MIB, 60 * MIB] if quick else [8 * MIB, 60 * MIB, 900 * MIB, 2200 * MIB]
    big = [60 * MIB] if quick else [60 * MIB, 900 * MIB, 2200 * MIB]
    for size in sizes:
        cases.append((f"seed 3 cols, {size // MIB} MiB", f"seed-{size // MIB}.csv",
                      lambda p, s=size: write_until(p, s, seed_block)))
    for size in big[:2]:
        cases.append((f"20 cols ts+quoted, {size // MIB} MiB", f"mixed-{size // MIB}.csv",
                      lambda p, s=size: write_until(p, s, mixed_block)))
    for size in big:
        cases.append((f"120 cols, {size // MIB} MiB", f"wide-{size // MIB}.csv",
                      lambda p, s=size: write_until(p, s, wide_block)))
    gz_raw = 200 * MIB if quick else 2000 * MIB
    cases.append((f"seed gzip ({gz_raw // MIB} MiB raw)", "seed-gz.csv.gz",
                  lambda p: write_until(p, gz_raw, seed_block,
                                        opener=lambda q, m: gzip.open(q, m, compresslevel=1))))
    cases.append(("one 16 MiB record", "max-record.csv",
                  lambda p: max_record(p, 16 * MIB)))

    only = [k for k in os.environ.get("PLAN_MEMORY_ONLY", "").split(",") if k]
    if only:
        cases = [c for c in cases if c[1] in only]
    for name, key, make in cases:
        path = data / key
        if not path.exists():
            sys.stderr.write(f"generating {key}\n")
            make(path)

    if "--generate-only" in sys.argv:
        return
    cores_list = [int(c) for c in os.environ.get("PLAN_MEMORY_CORES", "1,2").split(",")]
    port = free_port()
    server = subprocess.Popen([str(server_bin), str(root), f"127.0.0.1:{port}", BUCKET],
                              stdout=subprocess.PIPE, text=True)
    endpoint = server.stdout.readline().strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="etl-test-access",
               AWS_SECRET_ACCESS_KEY="etl-test-secret-Zq8w3Vx1",
               ETL_LOG_FORMAT="json", RUST_LOG="warn")
    time.sleep(0.5)
    rows = []
    worst = 0.0
    try:
        for name, key, _ in cases:
            plan = subprocess.run([str(etl), "--bucket", BUCKET, "--key", f"input/{key}", "--plan"],
                                  env=env, capture_output=True, text=True, check=True)
            line = json.loads(plan.stdout.splitlines()[0])
            limit = quantity(line["resources"]["limits"]["memory"])
            cpu = line["resources"]["limits"]["cpu"]
            peaks = []
            for cores in cores_list:
                code, peak, err = run_measured(
                    [str(etl), "--bucket", BUCKET, "--key", f"input/{key}", "--force"], env, cores)
                if code != 0:
                    sys.stderr.write(f"{key}: exit {code}: {err}\n")
                peaks.append(peak)
            size = (data / key).stat().st_size
            peak = max(peaks)
            worst = max(worst, peak / limit)
            rows.append((name, size, cpu, limit, peaks[0], peaks[-1], peak / limit))
            sys.stderr.write(f"{key}: limit {limit // MIB} MiB, peaks {[p // MIB for p in peaks]} MiB\n")
    finally:
        server.kill()

    print("| input | object size | planned cpu limit | planned memory limit | peak RSS, 1 core | peak RSS, 2 cores | peak / limit |")
    print("|---|---|---|---|---|---|---|")
    for name, size, cpu, limit, p1, p2, ratio in rows:
        print(f"| {name} | {size / MIB:.0f} MiB | {cpu} | {limit // MIB} MiB | "
              f"{p1 / MIB:.0f} MiB | {p2 / MIB:.0f} MiB | {ratio:.0%} |")
    print(f"\nworst peak / limit: {worst:.0%}")
    sys.exit(1 if worst >= 1 else 0)


if __name__ == "__main__":
    main()

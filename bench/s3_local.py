"""S3 against local (issue 15): one file converted from and to a local S3-compatible server
(`etl-s3-server`, s3s-fs) and from and to local disk, same run, medians.

  python3 bench/s3_local.py --etl target/release/etl --server target/release/etl-s3-server \
      --file /tmp/etl-bench-realistic/events-3m.csv [--rounds 3]

Variants: `local` (`--input/--output`), `s3` (defaults: ranged GETs and 4 parts in flight
above 64 MiB) and `s3 --s3-concurrency 1` (one GET stream, one part at a time: the
behaviour before ranged reads and concurrent uploads). Wall, CPU and peak RSS of `etl`
(GNU time), and the CPU the server spent meanwhile (it shares the machine).
"""
import argparse
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import boto3

from measure import gnu_time, medians


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--etl", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    src = Path(a.file)
    with tempfile.TemporaryDirectory(prefix="etl-s3-bench-") as scratch:
        scratch = Path(scratch)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([a.server, str(scratch / "s3"), f"127.0.0.1:{port}", "etlproj"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            endpoint = server.stdout.readline().strip()
            creds = dict(server.stdout.readline().strip().split("=", 1) for _ in range(2))
            env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
                   "ETL_LOG_FORMAT": "text", "ETL_CONDITIONAL_WRITES": "on", **creds}
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"])
            with open(src, "rb") as body:  # one PUT: the server stores the ETag once
                s3.put_object(Bucket="etlproj", Key=f"input/{src.name}", Body=body)
            key = ["--bucket", "etlproj", "--key", f"input/{src.name}", "--force"]
            variants = {
                "local": [a.etl, "--input", str(src), "--output", str(scratch / "out.parquet")],
                "s3 (ranged GETs, 4 parts in flight)": [a.etl, *key],
                "s3 --s3-concurrency 1": [a.etl, *key, "--s3-concurrency", "1"],
            }
            samples = {name: [] for name in variants}
            for _ in range(a.rounds):
                for name, cmd in variants.items():  # interleaved
                    before = cpu_seconds(server.pid)
                    run = gnu_time(cmd, env)
                    run["server_cpu"] = cpu_seconds(server.pid) - before
                    samples[name].append(run)
        finally:
            server.kill()
            server.wait()
    print(f"{src.name}, {src.stat().st_size / 1e6:.0f} MB, median of {a.rounds}, "
          f"{os.cpu_count()} CPUs ({time.strftime('%Y-%m-%d')})\n")
    print("| run | wall s | etl CPU s | etl peak RSS MB | server CPU s | walls |")
    print("|---|---:|---:|---:|---:|---|")
    for name, runs in samples.items():
        med = medians(runs)
        walls = ", ".join(f"{r['wall']:.2f}" for r in runs)
        server = f"{med['server_cpu']:.1f}" if name != "local" else "-"
        print(f"| `{name}` | {med['wall']:.2f} | {med['cpu']:.1f} | {med['rss']:.0f} | "
              f"{server} | {walls} |")


if __name__ == "__main__":
    main()

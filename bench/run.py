"""The benchmark driver behind `make bench` (scripts/bench.sh sets it up and calls it).

Generates deterministic inputs under bench/data/, runs etl and its peers on the same files
in the same run (separate processes, measured by GNU time), runs the S3 scenarios against
a local S3-compatible server (target/dist/etl-s3-server), and writes BENCHMARKS.md and
bench/chart.png. Every number in BENCHMARKS.md comes from this one run.
"""
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl

from measure import gnu_time, medians

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DATA = BENCH / "data"
DIST = ROOT / "target" / "dist"
ETL = DIST / "etl"
AGG = DIST / "agg"
SERVER = DIST / "etl-s3-server"
PY = sys.executable
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "20"))
BUCKET = "etlproj"
COLUMNS = ["no", "name", "score"]


# ---------------------------------------------------------------- inputs

def mix(values):
    """splitmix64 finaliser over uint64 numpy arrays: a deterministic pseudo-random stream."""
    x = values.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def vocabulary(size, seed):
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    words = []
    codes = mix(np.arange(size, dtype=np.uint64) + np.uint64(seed))
    for i, code in enumerate(codes.tolist()):
        length = 4 + i % 7
        word = bytes(letters[(code >> (5 * k)) % 26] for k in range(length))
        words.append(word.decode())
    return np.array(words, dtype=object)


def seed_rows(start, count, names):
    rows = np.arange(start, start + count, dtype=np.uint64)
    h = mix(rows)
    return pl.DataFrame({
        "no": rows.astype(np.int64) + 1,
        "name": pl.Series(names).gather(pl.Series((h % np.uint64(len(names))).astype(np.int64))),
        "score": ((h >> np.uint64(32)) % np.uint64(101)).astype(np.int64),
    })


def write_seed_file(path, total):
    """`no,name,score` without a header: no = 1..N, names from 50,000 words, score 0..100."""
    if path.exists():
        return
    names = vocabulary(50_000, 7)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        block = 5_000_000
        for start in range(0, total, block):
            seed_rows(start, min(block, total - start), names).write_csv(out, include_header=False)
    tmp.rename(path)


def write_wide_file(path, total):
    """20 columns with a header: integers, decimals, repetitive and unique text, booleans."""
    if path.exists():
        return
    cats = vocabulary(40, 11)
    words = vocabulary(20_000, 13)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        block = 500_000
        for start in range(0, total, block):
            n = min(block, total - start)
            r = np.arange(start, start + n, dtype=np.uint64)
            h = [mix(r + np.uint64(1_000_003 * k)) for k in range(6)]
            cols = {
                "id": r.astype(np.int64) + 1,
                "customer": (h[0] % np.uint64(100_000)).astype(np.int64),
                "qty": (h[1] % np.uint64(50)).astype(np.int64) + 1,
                "price": np.round((h[2] % np.uint64(100_000)).astype(np.float64) / 100.0, 2),
                "discount": np.round((h[3] % np.uint64(30)).astype(np.float64) / 100.0, 2),
                "category": pl.Series(cats).gather(pl.Series((h[4] % np.uint64(40)).astype(np.int64))),
                "region": pl.Series(cats[:8]).gather(pl.Series((h[5] % np.uint64(8)).astype(np.int64))),
                "product": pl.Series(words).gather(pl.Series((h[0] % np.uint64(20_000)).astype(np.int64))),
                "code": pl.Series([f"C{int(x):016x}" for x in (h[1] >> np.uint64(8))]),
                "in_stock": (h[2] % np.uint64(2)) == 0,
                "rating": np.round((h[3] % np.uint64(50)).astype(np.float64) / 10.0, 1),
                "ts": (r.astype(np.int64) * 37 + 1_700_000_000),
                "warehouse": (h[4] % np.uint64(12)).astype(np.int64),
                "weight": np.round((h[5] % np.uint64(10_000)).astype(np.float64) / 7.0, 3),
                "channel": pl.Series(cats[:3]).gather(pl.Series((h[0] % np.uint64(3)).astype(np.int64))),
                "score": (h[1] % np.uint64(101)).astype(np.int64),
                "returned": (h[3] % np.uint64(17)) == 0,
                "tax": np.round((h[4] % np.uint64(2_000)).astype(np.float64) / 100.0, 2),
                "batch": (r // np.uint64(1000)).astype(np.int64),
                "note": pl.Series(words).gather(pl.Series((h[2] % np.uint64(500)).astype(np.int64))),
            }
            pl.DataFrame(cols).write_csv(out, include_header=(start == 0))
    tmp.rename(path)


# ---------------------------------------------------------------- measuring



def peer_commands(src, out, header):
    has_header = "True" if header else "False"
    pyarrow_names = "" if header else f"read_options=csv.ReadOptions(column_names={COLUMNS!r}),"
    duck_opts = "header=true" if header else f"header=false, names={COLUMNS!r}"
    pandas_opts = "" if header else f"header=None, names={COLUMNS!r}"
    return {
        "etl": [str(ETL), "--input", str(src), "--output", str(out("etl"))],
        "polars": [PY, "-c", f"import polars as pl; pl.read_csv({str(src)!r}, has_header={has_header}"
                   + (f", new_columns={COLUMNS!r}" if not header else "")
                   + f").write_parquet({str(out('polars'))!r})"],
        "duckdb": [PY, "-c", "import duckdb; duckdb.sql(\"COPY (SELECT * FROM read_csv('"
                   + str(src) + "', " + duck_opts + ")) TO '" + str(out("duckdb"))
                   + "' (FORMAT parquet)\")"],
        "pyarrow": [PY, "-c", "from pyarrow import csv, parquet as pq; "
                    f"pq.write_table(csv.read_csv({str(src)!r}, {pyarrow_names}), {str(out('pyarrow'))!r})"],
        "pandas": [PY, "-c", f"import pandas as pd; pd.read_csv({str(src)!r}, {pandas_opts})"
                   f".to_parquet({str(out('pandas'))!r})"],
    }


def bench_file(src, header, rounds, tools=None):
    outdir = DATA / "out"
    outdir.mkdir(exist_ok=True)
    out = lambda tool: outdir / f"{src.stem}.{tool}.parquet"
    cmds = peer_commands(src, out, header)
    tools = tools or list(cmds)
    samples = {t: [] for t in tools}
    for _ in range(rounds):
        for tool in tools:  # interleaved: every tool sees the same machine state
            samples[tool].append(gnu_time(cmds[tool]))
    result = {t: medians(s) for t, s in samples.items()}
    for tool in tools:
        result[tool]["size"] = out(tool).stat().st_size
    return result


# ---------------------------------------------------------------- S3 scenarios

class CountingProxy:
    """A TCP proxy in front of the S3 server counting the bytes the server sends back."""

    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.down = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def take(self):
        with self.lock:
            n, self.down = self.down, 0
        return n

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection(self.upstream)
            for a, b, count in ((client, server, False), (server, client, True)):
                threading.Thread(target=self._pipe, args=(a, b, count), daemon=True).start()

    def _pipe(self, src, dst, count):
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                if count:
                    with self.lock:
                        self.down += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd, env):
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return wall


def s3_scenarios():
    import boto3
    root = Path(tempfile.mkdtemp(prefix="etl-bench-s3-"))
    port = free_port()
    server = subprocess.Popen([str(SERVER), str(root), f"127.0.0.1:{port}", BUCKET],
                              stdout=subprocess.PIPE, text=True)
    try:
        endpoint = server.stdout.readline().strip()
        proxy = CountingProxy(port)
        env = dict(os.environ,
                   AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}",
                   AWS_ACCESS_KEY_ID="etl-test-access",
                   AWS_SECRET_ACCESS_KEY="etl-test-secret-Zq8w3Vx1",
                   AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
                   AWS_EC2_METADATA_DISABLED="true",
                   AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
                   RUST_LOG="warn")
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
        results = {"endpoint": endpoint}

        # Per event: the seed's test.csv, N separate processes each.
        s3.put_object(Bucket=BUCKET, Key="input/test.csv", Body=(ROOT / "testdata/test.csv").read_bytes())
        seed, ours = [], []
        for _ in range(EVENTS):
            seed.append(timed([PY, str(BENCH / "seed_etl.py"), BUCKET, "input/test.csv"], env))
            ours.append(timed([str(ETL), "--bucket", BUCKET, "--key", "input/test.csv", "--force"], env))
        results["event"] = {"seed": statistics.median(seed), "etl": statistics.median(ours),
                            "runs": EVENTS}

        # Aggregation: 200 day files of 1,000 rows.
        day = "output/20230414/"
        names = vocabulary(1000, 3)
        staging = Path(tempfile.mkdtemp(prefix="etl-bench-agg-"))
        for i in range(200):
            csv_path = staging / f"{i + 1:03}.csv"
            seed_rows(i * 1000, 1000, names).write_csv(csv_path, include_header=False)
            pq_path = csv_path.with_suffix(".parquet")
            subprocess.run([str(ETL), "--input", str(csv_path), "--output", str(pq_path)],
                           check=True, env=env, stderr=subprocess.DEVNULL)
            s3.put_object(Bucket=BUCKET, Key=f"{day}{i + 1:03}.parquet", Body=pq_path.read_bytes())
            s3.put_object(Bucket=BUCKET, Key=f"input/sweep/{i + 1:03}.csv", Body=csv_path.read_bytes())
        shutil.rmtree(staging)
        agg_seed, agg_ours, bytes_seed, bytes_ours = [], [], [], []
        for _ in range(ROUNDS + 2):
            proxy.take()
            agg_seed.append(timed([PY, str(BENCH / "seed_agg.py"), BUCKET, day], env))
            bytes_seed.append(proxy.take())
            agg_ours.append(timed([str(AGG), "--bucket", BUCKET, "--prefix", day, "--force"], env))
            bytes_ours.append(proxy.take())
        results["agg"] = {"seed": statistics.median(agg_seed), "etl": statistics.median(agg_ours),
                          "seed_bytes": statistics.median(bytes_seed),
                          "etl_bytes": statistics.median(bytes_ours), "runs": ROUNDS + 2,
                          "data_bytes": sum(p.stat().st_size
                                            for p in (root / BUCKET / day).glob("*.parquet"))}

        # Sweep: 200 small CSV files, --jobs 8 against --jobs 1, outputs rewritten (--force).
        sweep = {1: [], 8: []}
        for _ in range(ROUNDS):
            for jobs in (1, 8):
                sweep[jobs].append(timed([str(ETL), "--bucket", BUCKET, "--prefix", "input/sweep/",
                                          "--jobs", str(jobs), "--force"], env))
        results["sweep"] = {"jobs1": statistics.median(sweep[1]), "jobs8": statistics.median(sweep[8]),
                            "files": 200}
        return results
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- checks and report

def check_output(path, rows):
    import pyarrow.parquet as pq
    table = pq.read_table(path)
    types = [str(t) for t in table.schema.types]
    assert table.num_rows == rows, (table.num_rows, rows)
    return types


def version_time(n=200):
    if shutil.which("hyperfine"):
        out = subprocess.run(["hyperfine", "-N", "--warmup", "20", "--export-json", "/dev/stdout",
                              f"{ETL} --version"], capture_output=True, text=True, check=True)
        data = json.loads(out.stdout[out.stdout.index("{"):])
        return data["results"][0]["mean"] * 1000, "hyperfine -N"
    for _ in range(20):
        subprocess.run([str(ETL), "--version"], stdout=subprocess.DEVNULL)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run([str(ETL), "--version"], stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, f"median of {n} fork+exec+wait from Python"


def machine():
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*: (.+)", cpuinfo)
    mem = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": model.group(1) if model else platform.processor(),
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "free": mem,
        "kernel": platform.release(),
    }


def versions():
    import duckdb, pandas, pyarrow
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    etl = subprocess.run([str(ETL), "--version"], capture_output=True, text=True).stdout.strip()
    return {"etl": etl, "rustc": rustc, "python": platform.python_version(),
            "polars": pl.__version__, "duckdb": duckdb.__version__, "pyarrow": pyarrow.__version__,
            "pandas": pandas.__version__}


def chart(seed10, seed40, wide):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tools = list(seed10)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    colors = ["#d62728" if t == "etl" else "#7f7f7f" for t in tools]
    axes[0].bar(tools, [seed10[t]["wall"] for t in tools], color=colors)
    axes[0].set_title("10M rows of no,name,score: wall time, s")
    axes[1].bar(tools, [wide[t]["wall"] for t in tools], color=colors)
    axes[1].set_title("20-column file: wall time, s")
    for t in tools:
        if t in seed40:
            axes[2].plot([10, 40], [seed10[t]["rss"], seed40[t]["rss"]], marker="o", label=t,
                         color="#d62728" if t == "etl" else None, linewidth=3 if t == "etl" else 1)
    axes[2].set_title("peak RSS, MB, by input rows (millions)")
    axes[2].set_xticks([10, 40])
    axes[2].set_yscale("log")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(BENCH / "chart.png", dpi=90)


def mb(x):
    return f"{x / 1e6:.1f}"


def table(results, baseline="polars"):
    base = results[baseline]
    lines = ["| tool | wall s | CPU s | peak RSS MB | output MB | wall vs polars | RSS vs polars |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for tool, r in results.items():
        lines.append(f"| {tool} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['rss']:.0f} | {mb(r['size'])} | "
                     f"{base['wall'] / r['wall']:.2f}x faster | {r['rss'] / base['rss']:.2f}x |")
    return "\n".join(lines)


def main():
    DATA.mkdir(parents=True, exist_ok=True)
    seed10, seed40, wide = DATA / "seed-10m.csv", DATA / "seed-40m.csv", DATA / "wide-20col.csv"
    t0 = time.time()
    write_seed_file(seed10, 10_000_000)
    write_seed_file(seed40, 40_000_000)
    write_wide_file(wide, 1_000_000)
    print(f"inputs ready in {time.time() - t0:.0f}s", flush=True)

    r10 = bench_file(seed10, False, ROUNDS)
    print("10M:", json.dumps(r10), flush=True)
    types = check_output(DATA / "out" / "seed-10m.etl.parquet", 10_000_000)
    r40 = bench_file(seed40, False, ROUNDS, ["etl"])
    r40.update(bench_file(seed40, False, 1, ["polars", "duckdb", "pyarrow", "pandas"]))
    print("40M:", json.dumps(r40), flush=True)
    rw = bench_file(wide, True, ROUNDS)
    print("wide:", json.dumps(rw), flush=True)
    import realistic
    real_dir = Path(os.environ.get("BENCH_REALISTIC_DATA", "/tmp/etl-bench-realistic"))
    real = realistic.run(ETL, real_dir, rounds=ROUNDS)
    real_md = realistic.markdown(real, ROUNDS, "make bench")
    realistic.chart(real, BENCH / "chart-realistic.png")
    version_ms, version_how = version_time()
    s3 = s3_scenarios()
    print("s3:", json.dumps(s3), flush=True)
    chart(r10, r40, rw)
    write_report(r10, r40, rw, types, version_ms, version_how, s3, real_md)
    shutil.rmtree(DATA / "out", ignore_errors=True)


def verdict(ok):
    return "met" if ok else "**NOT met**"


def write_report(r10, r40, rw, types, version_ms, version_how, s3, real_md=""):
    m, v = machine(), versions()
    e10, e40, p10 = r10["etl"], r40["etl"], r10["polars"]
    speed = p10["wall"] / e10["wall"]
    event_ratio = s3["event"]["seed"] / s3["event"]["etl"]
    agg_ratio = s3["agg"]["seed"] / s3["agg"]["etl"]
    sweep_ratio = s3["sweep"]["jobs1"] / s3["sweep"]["jobs8"]
    sizes = "\n".join(f"| {p.name} | {p.stat().st_size / 1e6:.1f} MB |"
                      for p in sorted(DIST.iterdir()) if p.is_file() and os.access(p, os.X_OK))
    wide_cols = "20 columns (id/customer/qty/ts/warehouse/score/batch int64, price/discount/rating/weight/tax float64, category/region/product/code/channel/note text, in_stock/returned boolean), header line"
    doc = f"""# Benchmarks

All figures below come from one run of `make bench` (`scripts/bench.sh`) on the machine
described at the end. Each tool runs as a separate process on the same file, in the same
run, tools interleaved round by round; the figures are medians of {ROUNDS} rounds. Wall and
CPU time (user + system) and peak RSS are GNU time's (`/usr/bin/time -v`). The Python
peers' times include interpreter start and imports, as a per-file worker pays them too.

## Targets

| target | measured | verdict |
|---|---|---|
| 10M rows: wall >= 1.5x faster than polars | {speed:.2f}x ({e10['wall']:.2f} s vs {p10['wall']:.2f} s) | {verdict(speed >= 1.5)} |
| 10M rows: peak RSS <= 100 MB | {e10['rss']:.0f} MB | {verdict(e10['rss'] <= 100)} |
| 40M rows: peak RSS <= 100 MB | {e40['rss']:.0f} MB | {verdict(e40['rss'] <= 100)} |
| Parquet no larger than polars's | {mb(e10['size'])} MB vs {mb(p10['size'])} MB | {verdict(e10['size'] <= p10['size'])} |
| readable by pyarrow, types int64/string/int64 | {', '.join(types)} | {verdict(types in (['int64', 'string', 'int64'], ['int64', 'large_string', 'int64']))} |
| `etl --version` process time < 5 ms | {version_ms:.2f} ms ({version_how}) | {verdict(version_ms < 5)} |
| seed's test.csv via S3, per event, >= 20x faster than the seed's script | {event_ratio:.1f}x ({s3['event']['etl'] * 1000:.0f} ms vs {s3['event']['seed'] * 1000:.0f} ms) | {verdict(event_ratio >= 20)} |
| agg of 200 day files, >= 10x faster than the seed's approach | {agg_ratio:.1f}x ({s3['agg']['etl'] * 1000:.0f} ms vs {s3['agg']['seed'] * 1000:.0f} ms) | {verdict(agg_ratio >= 10)} |

## CSV to Parquet, 10M rows of `no,name,score` ({(DATA / 'seed-10m.csv').stat().st_size / 1e6:.0f} MB, no header)

{table(r10)}

## Memory curve: 40M rows ({(DATA / 'seed-40m.csv').stat().st_size / 1e6:.0f} MB)

etl: median of {ROUNDS} rounds; the peers ran once on this file (each needs GBs of memory and the
point here is the shape of the curve).

{table(r40)}

| tool | peak RSS at 10M rows | at 40M rows |
|---|---:|---:|
""" + "\n".join(f"| {t} | {r10[t]['rss']:.0f} MB | {r40[t]['rss']:.0f} MB |" for t in r10) + f"""

## Wider file: 1M rows, {wide_cols} ({(DATA / 'wide-20col.csv').stat().st_size / 1e6:.0f} MB)

{table(rw)}

![wall time and peak RSS](bench/chart.png)

{real_md}

## Per event through the S3-compatible server (the seed's `test.csv`)

`etl --bucket etlproj --key input/test.csv --force` against the seed's script
(`bench/seed_etl.py`: boto3 download, pandas `read_csv(header=None, names=no,name,score)`,
`to_parquet`, upload), each run {s3['event']['runs']} times as a separate process against
`etl-s3-server` (s3s-fs, the integration tests' server, built with the same profile) on
127.0.0.1. Median wall time per event, process start to exit:

| | per event | ratio |
|---|---:|---:|
| seed (Python: boto3 + pandas) | {s3['event']['seed'] * 1000:.0f} ms | 1x |
| etl | {s3['event']['etl'] * 1000:.1f} ms | {event_ratio:.1f}x faster |

## Daily aggregate: 200 day files of 1,000 rows (issue 5)

`agg --bucket etlproj --prefix output/20230414/ --force` (`--force`: recompute although
`agg.json` is up to date) against the seed's approach (`bench/seed_agg.py`: list, download
every file, pandas `concat`, `idxmax`, write `agg.txt`), median of {s3['agg']['runs']} runs each.
Bytes read = bytes the server sent back (headers included), counted by a TCP proxy in
`bench/run.py` between the clients and the server. The day's Parquet files total
{mb(s3['agg']['data_bytes'])} MB.

| | wall | bytes read from the server | ratio |
|---|---:|---:|---:|
| seed (boto3 + pandas) | {s3['agg']['seed'] * 1000:.0f} ms | {s3['agg']['seed_bytes'] / 1e3:.0f} kB | 1x |
| agg | {s3['agg']['etl'] * 1000:.0f} ms | {s3['agg']['etl_bytes'] / 1e3:.0f} kB | {agg_ratio:.1f}x faster, {s3['agg']['seed_bytes'] / max(s3['agg']['etl_bytes'], 1):.1f}x fewer bytes |

## Sweep: 200 small CSV objects (issue 10)

`etl --bucket etlproj --prefix input/sweep/ --force` with `--jobs 8` and `--jobs 1`
(`--force` rewrites every output each time), median of {ROUNDS} runs:

| | wall | ratio |
|---|---:|---:|
| --jobs 1 | {s3['sweep']['jobs1']:.2f} s | 1x |
| --jobs 8 | {s3['sweep']['jobs8']:.2f} s | {sweep_ratio:.1f}x faster |

## How etl gets there

- The caller's thread reads (and decompresses) the input in 2 MiB chunks cut at the last
  newline outside quoted fields, found by jumping from quote to quote; one worker per CPU
  of the container's cgroup quota decodes chunks into typed Arrow arrays (integers,
  floats, booleans, dates, timestamps, text; quoted records framed as the `csv` crate
  does, which stays the reference for a chunk's exact error); a writer thread puts them
  back in order. Decoding takes one of a process-wide set of slots, one per CPU, so the
  conversions of a sweep share the CPUs instead of multiplying threads.
- Parquet columns are encoded in parallel, the columns spread over one encoder thread per
  CPU; a row group ends at 1M rows or 64 MiB of Arrow data, and pages shrink on wide
  tables, so peak memory depends neither on the file's length nor on its width much.
  Encodings are chosen from the first batch: delta without a dictionary for mostly
  distinct integers (`no`), plain for mostly distinct floats, dictionaries for the rest
  (text falls back to plain by itself when its dictionary outgrows a page). zstd level 1.
- A fixed pool of {2} x cores + 2 chunk buffers circulates between the stages, so memory
  does not grow with the input.

## Binaries (`target/dist`, profile `dist`: fat LTO, codegen-units 1, panic abort, stripped)

| binary | size |
|---|---:|
{sizes}

## Machine and versions

- CPU: {m['cpu']}, `nproc` = {m['nproc']}, kernel {m['kernel']}
- `free -h`:

```
{m['free']}
```

- {v['etl']}, {v['rustc']}; Python {v['python']}, polars {v['polars']}, duckdb {v['duckdb']},
  pyarrow {v['pyarrow']}, pandas {v['pandas']}

## Reproduce

```
make bench        # = scripts/bench.sh; BENCH_ROUNDS=3 BENCH_EVENTS=20 by default
```

It builds `target/dist` (`scripts/build-image-binaries.sh` plus `etl-s3-server`), creates
`bench/venv` (pyarrow, polars, duckdb, pandas, boto3, matplotlib from PyPI), generates the
inputs under `bench/data/` (deterministic), runs everything above and rewrites this file and
`bench/chart.png`.
"""
    (ROOT / "BENCHMARKS.md").write_text(doc)


if __name__ == "__main__":
    main()

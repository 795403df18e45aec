"""Realistic CSV scenarios for `make bench` (issue 15): generated with a fixed seed under a
scratch directory (never committed), converted by etl and its peers in the same run.

  events   16 columns: ISO timestamps with zones (offsets and `Z`, fractions), dates, ints,
           floats, `NA` nulls, booleans, quoted text with commas, quotes and newlines
  events.gz the same file gzipped
  wide     120 columns of ints, floats, dates and text with `NA` nulls

Run alone: `python3 bench/realistic.py [--rows N] [--rounds N] [--etl PATH] [--only NAME]`.
"""
import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

from measure import gnu_time, medians

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261202
PEERS = ["polars", "duckdb", "pyarrow"]


# ---------------------------------------------------------------- inputs

def _words(rng, size):
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, 3 + i % 8)) for i in range(size)]


def _with_nulls(series, rng, share):
    mask = pl.Series(rng.random(len(series)) < share)
    return pl.select(pl.when(mask).then(None).otherwise(series)).to_series().alias(series.name)


def events_frame(rng, start, n, words, cities):
    """One block of the events file: rows start..start+n."""
    ids = np.arange(start, start + n, dtype=np.int64) + 1
    base = 1_672_531_200_000_000  # 2023-01-01T00:00:00Z in µs
    created = base + np.sort(rng.integers(0, 365 * 86_400, n)) * 1_000_000
    updated = created + rng.integers(0, 7 * 86_400_000_000, n)
    created_s = pl.Series(created).cast(pl.Datetime("us")).dt.strftime("%Y-%m-%dT%H:%M:%S")
    # Offsets as a European export writes them: +01:00 in winter, +02:00 in summer.
    summer = (created > base + 88 * 86_400_000_000) & (created < base + 301 * 86_400_000_000)
    offsets = pl.Series(np.where(summer, "+02:00", "+01:00"))
    updated_s = pl.Series(updated).cast(pl.Datetime("us")).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
    birth = pl.Series(rng.integers(-10_000, 15_000, n).astype(np.int32)).cast(pl.Date)
    kinds = pl.Series(rng.random(n))
    pick = rng.integers(0, len(words), (n, 3))
    w = pl.Series(words)
    a, b, c = (w.gather(pl.Series(pick[:, k])) for k in range(3))
    comment = pl.select(
        pl.when(kinds < 0.70).then(a)
        .when(kinds < 0.90).then(pl.concat_str([a, b, c], separator=", "))
        .when(kinds < 0.97).then(pl.concat_str([a, pl.lit(' said "'), b, pl.lit('"')]))
        .otherwise(pl.concat_str([a, pl.lit("\n"), b, pl.lit(", "), c]))
    ).to_series()
    return pl.DataFrame([
        pl.Series("id", ids),
        (created_s + offsets).alias("created_at"),
        _with_nulls(updated_s.alias("updated_at"), rng, 0.05),
        birth.alias("birth_date"),
        pl.Series("user_id", rng.integers(1, 500_000, n)),
        _with_nulls(pl.Series("amount", np.round(rng.normal(100, 40, n), 2)), rng, 0.08),
        _with_nulls(pl.Series("qty", rng.integers(1, 20, n)), rng, 0.03),
        pl.Series("price", np.round(rng.random(n) * 1000, 2)),
        pl.Series("lat", np.round(rng.uniform(-90, 90, n), 6)),
        pl.Series("lon", np.round(rng.uniform(-180, 180, n), 6)),
        pl.Series("city", np.array(cities, dtype=object)[rng.integers(0, len(cities), n)]),
        pl.Series("status", np.array(["new", "paid", "shipped", "returned"])[rng.integers(0, 4, n)]),
        pl.Series("flag", rng.random(n) < 0.3),
        _with_nulls(pl.Series("score", rng.integers(0, 101, n)), rng, 0.10),
        comment.alias("comment"),
        pl.select(pl.concat_str([pl.lit("C"), pl.lit(pl.Series(rng.integers(0, 1 << 48, n))).cast(pl.String)])).to_series().alias("code"),
    ])


def write_events(path, rows, seed=SEED):
    """The events file (about 190 bytes a row), `NA` for nulls, quotes where needed."""
    if path.exists():
        return
    rng = np.random.default_rng(seed)
    words = _words(rng, 5000)
    cities = ["São Paulo", "Zürich", "New York", "Lyon", "Kraków", "Osaka", "Lagos", "Lima"]
    tmp = path.with_suffix(".tmp")
    block = 500_000
    with open(tmp, "wb") as out:
        for start in range(0, rows, block):
            frame = events_frame(rng, start, min(block, rows - start), words, cities)
            frame.write_csv(out, include_header=start == 0, null_value="NA")
    tmp.rename(path)


def write_gzip(src, path):
    if path.exists():
        return
    tmp = path.with_suffix(".tmp")
    subprocess.run(f"gzip -1 -c {src} > {tmp}", shell=True, check=True)
    tmp.rename(path)


def write_wide(path, rows, columns=120, seed=SEED + 1):
    """`columns` columns cycling int, float, date, text, int with NA, float with NA."""
    if path.exists():
        return
    rng = np.random.default_rng(seed)
    words = np.array(_words(rng, 300), dtype=object)
    tmp = path.with_suffix(".tmp")
    block = 100_000
    with open(tmp, "wb") as out:
        for start in range(0, rows, block):
            n = min(block, rows - start)
            series = []
            for c in range(columns):
                name = f"c{c:03}"
                kind = c % 6
                if kind == 0:
                    s = pl.Series(name, rng.integers(0, 1_000_000, n))
                elif kind == 1:
                    s = pl.Series(name, np.round(rng.random(n) * 100, 3))
                elif kind == 2:
                    s = pl.Series(name, rng.integers(15_000, 20_000, n).astype(np.int32)).cast(pl.Date)
                elif kind == 3:
                    s = pl.Series(name, words[rng.integers(0, len(words), n)].astype(str))
                elif kind == 4:
                    s = _with_nulls(pl.Series(name, rng.integers(-500, 500, n)), rng, 0.1)
                else:
                    s = _with_nulls(pl.Series(name, np.round(rng.normal(0, 1, n), 4)), rng, 0.1)
                series.append(s)
            pl.DataFrame(series).write_csv(out, include_header=start == 0, null_value="NA")
    tmp.rename(path)


# ---------------------------------------------------------------- measuring



def commands(etl, src, out):
    """Each tool typing the file as well as it can: nulls `NA`, dates and timestamps parsed."""
    py = sys.executable
    s, o = str(src), lambda t: str(out(t))
    return {
        # `etl`, or the converter alone (crates/etl-convert/examples/convert.rs: INPUT OUTPUT).
        "etl": [str(etl), "--input", s, "--output", o("etl")] if Path(etl).name == "etl"
        else [str(etl), s, o("etl")],
        "polars": [py, "-c", "import polars as pl; "
                   f"pl.read_csv({s!r}, null_values=['NA'], try_parse_dates=True)"
                   f".write_parquet({o('polars')!r})"],
        "duckdb": [py, "-c", "import duckdb; duckdb.sql(\"COPY (SELECT * FROM read_csv('"
                   + s + "', nullstr='NA')) TO '" + o("duckdb") + "' (FORMAT parquet)\")"],
        "pyarrow": [py, "-c", "from pyarrow import csv, parquet as pq; "
                    "pq.write_table(csv.read_csv(" + repr(s) + ", convert_options="
                    "csv.ConvertOptions(null_values=['NA'], strings_can_be_null=True), "
                    "parse_options=csv.ParseOptions(newlines_in_values=True)), "
                    + repr(o("pyarrow")) + ")"],
    }


def bench(etl, src, rounds, outdir, tools=None):
    out = lambda tool: outdir / f"{src.name}.{tool}.parquet"
    cmds = commands(etl, src, out)
    tools = tools or list(cmds)
    samples = {t: [] for t in tools}
    for _ in range(rounds):
        for tool in tools:  # interleaved: every tool sees the same machine state
            samples[tool].append(gnu_time(cmds[tool]))
    result = {}
    for tool, runs in samples.items():
        result[tool] = medians(runs)
        result[tool]["runs"] = [round(r["wall"], 2) for r in runs]
        result[tool]["size"] = out(tool).stat().st_size
    return result


def check_types(path, expect):
    """The Parquet's Arrow types, asserted against `expect` {column: type prefix}."""
    import pyarrow.parquet as pq
    schema = pq.read_schema(path)
    types = {f.name: str(f.type) for f in schema}
    wrong = {c: types.get(c) for c, t in expect.items() if not str(types.get(c)).startswith(t)}
    return types, wrong


EVENTS_TYPES = {
    "id": "int64", "created_at": "timestamp[us, tz=", "updated_at": "timestamp[us, tz=",
    "birth_date": "date32", "user_id": "int64", "amount": "double", "qty": "int64",
    "price": "double", "lat": "double", "lon": "double", "city": "string", "flag": "bool",
    "score": "int64", "comment": "string",
}
WIDE_TYPES = {f"c{c:03}": ["int64", "double", "date32", "string", "int64", "double"][c % 6]
              for c in range(120)}


def ratio_row(name, result):
    fastest = min(result[t]["wall"] for t in ("polars", "duckdb") if t in result)
    e = result["etl"]
    return {"scenario": name, "fastest_peer": fastest,
            "etl_vs_fastest": fastest / e["wall"]}


def scenarios(data, rows, wide_rows):
    events = data / f"events-{rows // 1_000_000}m.csv"
    return {
        "events": (lambda: write_events(events, rows), events, EVENTS_TYPES),
        "events.gz": (lambda: (write_events(events, rows),
                               write_gzip(events, events.with_suffix(".csv.gz"))),
                      events.with_suffix(".csv.gz"), EVENTS_TYPES),
        "wide": (lambda: write_wide(data / f"wide-{wide_rows // 1000}k.csv", wide_rows),
                 data / f"wide-{wide_rows // 1000}k.csv", WIDE_TYPES),
    }


def run(etl, data, rows=3_000_000, wide_rows=300_000, rounds=3, only=None, memory_curve=True):
    """Every scenario: medians, types of etl's output, the 4x memory curve of etl."""
    data.mkdir(parents=True, exist_ok=True)
    outdir = data / "out"
    outdir.mkdir(exist_ok=True)
    results = {}
    for name, (make, path, expect) in scenarios(data, rows, wide_rows).items():
        if only and name not in only:
            continue
        make()
        r = bench(etl, path, rounds, outdir)
        types, wrong = check_types(outdir / f"{path.name}.etl.parquet", expect)
        r["_meta"] = {"file": path.name, "bytes": path.stat().st_size, "wrong_types": wrong,
                      "etl_types": types}
        results[name] = r
        print(name, json.dumps({t: v for t, v in r.items() if t != "_meta"}),
              "wrong types:", wrong, flush=True)
    if memory_curve and (not only or "curve" in only):
        big = data / f"events-{4 * rows // 1_000_000}m.csv"
        write_events(big, 4 * rows)
        results["events-4x"] = bench(etl, big, 1, outdir, ["etl"])
        results["events-4x"]["_meta"] = {"file": big.name, "bytes": big.stat().st_size}
        print("events-4x", json.dumps(results["events-4x"]["etl"]), flush=True)
    shutil.rmtree(outdir, ignore_errors=True)
    return results


def table(result):
    fastest = min(result[t]["wall"] for t in ("polars", "duckdb") if t in result)
    lines = ["| tool | wall s (median) | CPU s | peak RSS MB | output MB | etl speed-up vs this |",
             "|---|---:|---:|---:|---:|---:|"]
    for tool, r in result.items():
        if tool.startswith("_"):
            continue
        lines.append(f"| {tool} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['rss']:.0f} | "
                     f"{r['size'] / 1e6:.1f} | {r['wall'] / result['etl']['wall']:.2f}x |")
    lines.append(f"\netl vs the fastest of polars and DuckDB: "
                 f"**{fastest / result['etl']['wall']:.2f}x**")
    return "\n".join(lines)


def chart(res, path):
    """Wall time and peak RSS of every tool per scenario, as bench/chart-realistic.png."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [n for n, r in res.items() if "polars" in r]
    tools = ["etl", *PEERS]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.8 / len(tools)
    for k, tool in enumerate(tools):
        xs = [i + k * width for i in range(len(names))]
        color = "#d62728" if tool == "etl" else None
        axes[0].bar(xs, [res[n][tool]["wall"] for n in names], width, label=tool, color=color)
        axes[1].bar(xs, [res[n][tool]["rss"] for n in names], width, label=tool, color=color)
    for ax, title in zip(axes, ["wall time, s (median)", "peak RSS, MB"]):
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names)
        ax.set_title(title)
        ax.legend()
    axes[1].set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


MARK_BEGIN, MARK_END = "<!-- realistic: begin -->", "<!-- realistic: end -->"


def markdown(res, rounds, command, notes=""):
    """The section of BENCHMARKS.md for these results."""
    descr = {
        "events": "16 columns: `created_at` ISO timestamps with offsets (+01:00/+02:00), "
                  "`updated_at` with milliseconds and `Z` (5% `NA`), a date, ints and floats "
                  "with `NA`, a boolean, text with quoted fields holding commas, doubled quotes "
                  "and newlines (30% of `comment`)",
        "events.gz": "the same file, gzip -1",
        "wide": "120 columns cycling int, float, date, text, int with 10% `NA`, float with 10% `NA`",
    }
    parts = [MARK_BEGIN, "## Realistic files (issue 15)", "",
             f"Generated by `bench/realistic.py` (fixed seed, written to a scratch directory). "
             f"Medians of {rounds} rounds, tools interleaved per round; wall, CPU and peak RSS "
             "from GNU time. Peers type the file: polars `read_csv(null_values=['NA'], "
             "try_parse_dates=True)`, DuckDB `read_csv(nullstr='NA')` (auto-detection), pyarrow "
             "`read_csv` with `null_values=['NA']` and `newlines_in_values=True`; all write "
             "Parquet. etl's output is read back with pyarrow and its types checked.", ""]
    if notes:
        parts += [notes, ""]
    parts += [f"Command: `{command}`", ""]
    for name, r in res.items():
        meta = r["_meta"]
        if "polars" not in r:
            continue
        parts += [f"### {name}: {meta['file']} ({meta['bytes'] / 1e6:.0f} MB) - {descr.get(name, '')}",
                  "", table(r), ""]
        wrong = meta.get("wrong_types")
        parts += ["etl's Parquet types: " + (
            "all as expected (timestamps `timestamp[us, tz=UTC]`, dates `date32`, numbers "
            "with `NA` as int64/double)." if not wrong else f"**unexpected: {wrong}**"), ""]
    if "events-4x" in res and "events" in res:
        one, four = res["events"]["etl"], res["events-4x"]["etl"]
        parts += ["### Memory from 1x to 4x the file (etl)", "",
                  "| file | size | wall s | peak RSS MB |", "|---|---:|---:|---:|",
                  f"| {res['events']['_meta']['file']} | {res['events']['_meta']['bytes'] / 1e6:.0f} MB "
                  f"| {one['wall']:.2f} | {one['rss']:.0f} |",
                  f"| {res['events-4x']['_meta']['file']} | {res['events-4x']['_meta']['bytes'] / 1e6:.0f} MB "
                  f"| {four['wall']:.2f} | {four['rss']:.0f} |", ""]
    parts += ["![realistic scenarios: wall time and peak RSS](bench/chart-realistic.png)", ""]
    parts.append(MARK_END)
    return "\n".join(parts)


def update_benchmarks_md(section):
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text()
    if MARK_BEGIN in text:
        head, rest = text.split(MARK_BEGIN, 1)
        tail = rest.split(MARK_END, 1)[1]
        text = head + section + tail
    else:
        anchor = "## Per event through"
        text = text.replace(anchor, section + "\n\n" + anchor, 1) if anchor in text \
            else text + "\n" + section + "\n"
    path.write_text(text)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--etl", default=str(ROOT / "target" / "dist" / "etl"))
    ap.add_argument("--data", default="/tmp/etl-bench-realistic")
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--wide-rows", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--json")
    ap.add_argument("--update-md", action="store_true",
                    help="replace the realistic section of BENCHMARKS.md with these results")
    ap.add_argument("--notes", default="")
    a = ap.parse_args()
    res = run(Path(a.etl), Path(a.data), a.rows, a.wide_rows, a.rounds, a.only)
    for name, r in res.items():
        print(f"\n### {name} ({r['_meta']['file']}, {r['_meta']['bytes'] / 1e6:.0f} MB)\n")
        print(table(r) if "polars" in r else
              f"etl: {r['etl']['wall']:.2f} s, {r['etl']['rss']:.0f} MB")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    if a.update_md:
        chart(res, ROOT / "bench" / "chart-realistic.png")
        update_benchmarks_md(markdown(res, a.rounds, "python3 bench/realistic.py " + " ".join(sys.argv[1:]), a.notes))

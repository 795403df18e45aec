#!/usr/bin/env python3
"""Held-out evaluation: etl, polars and DuckDB against pyarrow on the generated corpus.

Usage: scripts/csv-eval/evaluate.py CORPUS_DIR [ETL_BINARY] [--details] [--only SUBSTRING]

CORPUS_DIR is written by generate.py (manifest.json holds the truth). For every file:
  - pyarrow (the reference) reads it told the true delimiter, header and decimal mark, with its
    default null tokens plus \\N, ISO 8601 timestamps, and one block for the whole file (so that
    its inference sees every row);
  - etl converts it to Parquet told nothing (everything sniffed);
  - polars reads it with its defaults, told the separator, the decimal comma and the same nulls
    (it does not sniff those), try_parse_dates=True;
  - DuckDB's read_csv sniffs, told the null tokens and the decimal separator.
Header right: the column count and the names are the truth's (an empty name may become any name;
repeated names may be made unique). Rows right: the truth's count. A column agrees when its type
class (int, float, bool, date/time, text) and its values equal pyarrow's; where pyarrow's answer
is not defensible (integers with leading zeros: pyarrow drops the zeros) it agrees when it is text
with the values as written (integers with leading zeros or beyond i64: text; integers written with a
plus sign, which pyarrow reads as float64: int). A column of nulls only agrees when it is all null,
whatever the type. Columns: all; 'defensible': those where pyarrow's answer is the reference;
'not def.': the others.
Prints the summary table, and with --details every disagreement. Exit 0 always (a measurement).
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

try:
    import polars as pl
except ImportError:
    pl = None
try:
    import duckdb
except ImportError:
    duckdb = None

PA_NULLS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
            "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null", "\\N"]


def type_class(t):
    if pa.types.is_null(t):
        return "null"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_temporal(t):
        return "date/time"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t):
        return "text"
    return str(t)


def normalize(column):
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    t = column.type
    if pa.types.is_timestamp(t):
        return ("tz" if t.tz else "naive"), column.cast(pa.timestamp("us", tz=t.tz)).cast(pa.int64()).to_pylist()
    if pa.types.is_decimal(t):
        return None, column.cast(pa.float64()).to_pylist()
    if type_class(t) == "text":
        return None, column.cast(pa.string()).to_pylist()
    return None, column.to_pylist()


def same_values(a, b):
    tza, va = normalize(a)
    tzb, vb = normalize(b)
    if tza != tzb or len(va) != len(vb):
        return False
    for x, y in zip(va, vb):
        if isinstance(x, float) and isinstance(y, float):
            if not (x == y or (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-12)):
                return False
        elif x != y:
            return False
    return True


def all_null(column):
    return column.null_count == len(column)


def read_pyarrow(path, case, as_text=False):
    parse = pacsv.ParseOptions(delimiter=case["delimiter"], newlines_in_values=True)
    read = pacsv.ReadOptions(block_size=1 << 28, autogenerate_column_names=not case["header"])
    convert = pacsv.ConvertOptions(
        null_values=PA_NULLS, strings_can_be_null=True, quoted_strings_can_be_null=True,
        decimal_point="," if case["decimal_comma"] else ".", timestamp_parsers=[pacsv.ISO8601])
    if as_text:
        n = len(case["names"])
        names = case["names"] if case["header"] else [f"f{i}" for i in range(n)]
        convert.column_types = {name: pa.string() for name in names if name}
    return pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)


def run_etl(etl, path, tmp):
    out = os.path.join(tmp, "out.parquet")
    if os.path.exists(out):
        os.remove(out)
    start = time.perf_counter()
    run = subprocess.run([etl, "--input", path, "--output", out, "--log-format", "text"],
                         capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(f"exit {run.returncode}: {run.stderr.strip()[-300:]}")
    return pq.read_table(out), elapsed


def run_polars(path, case):
    start = time.perf_counter()
    df = pl.read_csv(path, separator=case["delimiter"], null_values=PA_NULLS, try_parse_dates=True,
                     decimal_comma=case["decimal_comma"])
    table = df.to_arrow()
    return table, time.perf_counter() - start


def run_duckdb(path, case):
    nulls = ", ".join("'" + n.replace("'", "''") + "'" for n in PA_NULLS)
    decimal = ", decimal_separator=','" if case["decimal_comma"] else ""
    start = time.perf_counter()
    con = duckdb.connect()
    sql = f"SELECT * FROM read_csv('{path}', nullstr=[{nulls}]{decimal})"
    rel = con.sql(sql)
    table = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.fetch_arrow_table()
    con.close()
    return table, time.perf_counter() - start


def header_right(table, case):
    truth = case["names"]
    if table.num_columns != len(truth):
        return False
    if not case["header"]:
        return True  # the names of a headerless file are the tool's; its first row must be data
    names = table.column_names
    for want, got in zip(truth, names):
        if want == "" or got == want:
            continue
        if truth.count(want) > 1 and got.startswith(want):
            continue
        return False
    return True


def compare(table, ref, text_ref, case):
    """Per column: True when it agrees. Assumes same shape."""
    out = []
    for i in range(len(case["names"])):
        col = table.column(i)
        if case["classes"][i] == "null" or table.num_rows == 0:
            out.append(all_null(col))
            continue
        if case["defensible"][i]:
            r = ref.column(i)
            if all_null(r):
                # No type to agree on: pyarrow says null, etl text; the nulls must match.
                out.append(all_null(col))
                continue
            out.append(type_class(col.type) == type_class(r.type) and same_values(col, r))
        else:
            # pyarrow's answer is not defensible: the intended class, values as written.
            want = case["classes"][i]
            written = text_ref.column(i)
            if want == "int":
                written = pa.array([None if v is None else int(v) for v in written.to_pylist()], pa.int64())
            out.append(type_class(col.type) == want and same_values(col, written))
    return out


def main():
    args = [a for a in sys.argv[1:]]
    details = "--details" in args
    only = None
    if "--only" in args:
        only = args[args.index("--only") + 1]
        args.remove("--only")
        args.remove(only)
    args = [a for a in args if not a.startswith("--")]
    corpus = args[0]
    etl = args[1] if len(args) > 1 else "target/debug/etl"
    with open(os.path.join(corpus, "manifest.json")) as f:
        manifest = json.load(f)
    tools = ["etl"] + (["polars"] if pl else []) + (["duckdb"] if duckdb else [])
    stats = {t: dict(files=0, converted=0, header=0, rows=0, cols=0, agree=0, dcols=0, dagree=0,
                     ndcols=0, ndagree=0, time=0.0) for t in tools + ["pyarrow"]}
    problems = {t: [] for t in tools}
    pyarrow_vs_truth = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in sorted(manifest.items()):
            if only and only not in name:
                continue
            path = os.path.join(corpus, name)
            start = time.perf_counter()
            ref = read_pyarrow(path, case)
            stats["pyarrow"]["time"] += time.perf_counter() - start
            text_ref = read_pyarrow(path, case, as_text=True) if not all(case["defensible"]) else None
            for i, klass in enumerate(case["classes"]):
                got = type_class(ref.column(i).type)
                klass = "date/time" if klass == "date" else klass
                if got not in (klass, "null") and klass != "null" and case["defensible"][i]:
                    pyarrow_vs_truth.append(f"{name}: {case['names'][i]!r}: pyarrow {got}, intended {klass}")
            for tool in tools:
                s = stats[tool]
                s["files"] += 1
                ncols = len(case["names"])
                s["cols"] += ncols
                nd = sum(1 for d in case["defensible"] if not d)
                s["ndcols"] += nd
                s["dcols"] += ncols - nd
                try:
                    if tool == "etl":
                        table, elapsed = run_etl(etl, path, tmp)
                    elif tool == "polars":
                        table, elapsed = run_polars(path, case)
                    else:
                        table, elapsed = run_duckdb(path, case)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as e:  # noqa: BLE001 - a failure (polars panics) is a measurement
                    problems[tool].append(f"{name}: failed: {str(e).splitlines()[0][:200]}")
                    continue
                s["time"] += elapsed
                s["converted"] += 1
                h = header_right(table, case)
                rows = table.num_rows == case["rows"]
                s["header"] += h
                s["rows"] += rows
                if not h:
                    problems[tool].append(f"{name}: header {table.column_names[:8]} expected {case['names'][:8]}")
                if not rows:
                    problems[tool].append(f"{name}: {table.num_rows} rows, expected {case['rows']}")
                if table.num_columns != ncols or not rows:
                    continue
                agree = compare(table, ref, text_ref, case)
                for i, ok in enumerate(agree):
                    s["agree"] += ok
                    if case["defensible"][i]:
                        s["dagree"] += ok
                    else:
                        s["ndagree"] += ok
                    if not ok:
                        col = table.column(i)
                        klass = case["classes"][i] if not case["defensible"][i] else type_class(ref.column(i).type)
                        problems[tool].append(
                            f"{name}: column {case['names'][i]!r}: {tool} {col.type}, reference {klass}")
    pct = lambda a, b: f"{100.0 * a / b:.1f}%" if b else "-"  # noqa: E731
    print(f"corpus {corpus}: {stats['etl']['files']} files; reference pyarrow {pa.__version__}"
          f" ({stats['pyarrow']['time']:.1f} s)")
    print(f"{'tool':8} {'converted':>10} {'header':>8} {'rows':>8} {'columns agree':>14} "
          f"{'defensible':>11} {'not def.':>10} {'time s':>8}")
    for tool in tools:
        s = stats[tool]
        print(f"{tool:8} {s['converted']:>4}/{s['files']:<5} {pct(s['header'], s['files']):>8} "
              f"{pct(s['rows'], s['files']):>8} {s['agree']:>6}/{s['cols']:<5} {pct(s['agree'], s['cols']):>7} "
              f"{pct(s['dagree'], s['dcols']):>11} {pct(s['ndagree'], s['ndcols']):>10} {s['time']:>8.1f}")
    version = lambda m: getattr(m, "__version__", "?")  # noqa: E731
    print(f"versions: polars {version(pl) if pl else '-'}, duckdb {version(duckdb) if duckdb else '-'}")
    print(f"pyarrow differs from the generator's intent on {len(pyarrow_vs_truth)} defensible columns")
    if details:
        for line in pyarrow_vs_truth:
            print(f"  pyarrow: {line}")
        for tool in tools:
            for line in problems[tool]:
                print(f"  {tool}: {line}")
    else:
        for tool in tools:
            if problems[tool]:
                print(f"{tool}: {len(problems[tool])} disagreements, e.g. {problems[tool][0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

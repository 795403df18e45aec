#!/usr/bin/env python3
"""Compares etl's Parquet with pyarrow.csv's reading of testdata/realworld/, column by column.

Usage: scripts/check-realworld.py [BIN_DIR]   (default target/debug; needs the etl binary)

For every file of testdata/realworld/expected.json, runs `etl --input FILE --output X.parquet`,
reads the same CSV with pyarrow.csv (same delimiter, the same null tokens, decimal comma where
the file has one, ISO 8601 timestamps) and compares each column's type class (int, float, bool,
date/time, text) and values. Prints the share of columns that agree. Exits 1 when a column
disagrees that expected.json does not list under "pyarrow_differs" (a deliberate difference,
such as leading zeros kept as text), or when a file's row count or header differs from pyarrow's.
Installs pyarrow with pip when it is missing.
"""

import json
import math
import os
import subprocess
import sys
import tempfile

try:
    import pyarrow  # noqa: F401
except ImportError:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "pyarrow"])

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CORPUS = os.path.join(ROOT, "testdata", "realworld")
NULLS = ["", "NA", "N/A", "NULL", "null", "NaN", "nan", "#N/A", "\\N"]


def type_class(t):
    if pa.types.is_null(t):
        return "null"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_temporal(t):
        return "date/time"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    return str(t)


def values(column):
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("us", tz=column.type.tz)).cast(pa.int64())
    return column.to_pylist()


def same_values(ours, theirs):
    if len(ours) != len(theirs):
        return False
    for a, b in zip(ours, theirs):
        if isinstance(a, float) and isinstance(b, float):
            if not (a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12)):
                return False
        elif a != b:
            return False
    return True


def main():
    bin_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug")
    etl = os.path.join(bin_dir, "etl")
    with open(os.path.join(CORPUS, "expected.json")) as f:
        expected = json.load(f)
    agree = total = 0
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in expected.items():
            if name.startswith("_"):
                continue
            path = os.path.join(CORPUS, name)
            out = os.path.join(tmp, "out.parquet")
            run = subprocess.run([etl, "--input", path, "--output", out, "--log-format", "text"],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                failures.append(f"{name}: etl exited {run.returncode}: {run.stderr.strip()}")
                continue
            ours = pq.read_table(out)
            convert = pacsv.ConvertOptions(
                null_values=NULLS, strings_can_be_null=True, quoted_strings_can_be_null=True,
                decimal_point="," if case.get("decimal_comma") else ".",
                timestamp_parsers=[pacsv.ISO8601])
            theirs = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(
                delimiter=case["delimiter"], newlines_in_values=True), convert_options=convert)
            if theirs.num_rows != ours.num_rows or theirs.num_columns != ours.num_columns:
                failures.append(f"{name}: {ours.num_rows}x{ours.num_columns} but pyarrow reads "
                                f"{theirs.num_rows}x{theirs.num_columns}")
                continue
            differs = case.get("pyarrow_differs", {})
            for i, field in enumerate(ours.schema):
                total += 1
                theirs_field = theirs.schema.field(i)
                ours_class, theirs_class = type_class(field.type), type_class(theirs_field.type)
                if ours.num_rows == 0:
                    # pyarrow types an empty column as null; names are what there is to compare.
                    ok = theirs_field.name in (field.name, "")
                else:
                    ok = ours_class == theirs_class and same_values(values(ours.column(i)),
                                                                    values(theirs.column(i)))
                if ok:
                    agree += 1
                    continue
                note = (f"{name}: column {field.name}: ours {field.type} ({ours_class}), "
                        f"pyarrow {theirs_field.type} ({theirs_class})")
                if field.name in differs:
                    print(f"  deliberate: {note}: {differs[field.name]}")
                else:
                    failures.append(note)
    share = 100.0 * agree / max(total, 1)
    print(f"realworld: {agree}/{total} columns agree with pyarrow in type class and values ({share:.1f}%)")
    for failure in failures:
        print(f"  DISAGREES: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes a held-out corpus of CSV files shaped like real exports, with a manifest of the truth.

Usage: scripts/csv-eval/generate.py OUT_DIR [--files N] [--seed S]

Families: R write.csv, pandas to_csv, Excel/LibreOffice (';', decimal comma, CRLF, BOM, trailing
empty columns), database dumps (NULL, \\N, microseconds, offsets), logger files (ISO 8601 with Z),
wide statistics tables, all-text tables, quoted numeric headers, NA in the first rows, header-only
files, leading zeros (zip codes, ids), ids beyond i64, tab and pipe separated, headerless
seed-like files, odd number spellings (Inf, +5, 1., 1E5, 12%), dates and times of day in separate
columns, large files whose values force widening after record 10,000, gzip/zstd/bzip2 copies.

OUT_DIR/manifest.json holds per file: delimiter, decimal comma, whether there is a header, the
true column names and row count, and per column the intended type class and whether pyarrow's
answer is defensible (it is not for integers written with leading zeros: pyarrow drops them; nor
for integers beyond i64, which it reads as float64 and rounds; nor for integers written with a
plus sign, which make it read the column as float64).
Fixed seed: the same corpus every time. Nothing here is committed but this script.
"""

import bz2
import datetime as dt
import gzip
import json
import os
import random
import shutil
import subprocess
import sys

WORDS = ("alpha beta gamma delta Paris Berlin Zürich São Paulo north south east west red green "
         "blue apple pear plum Smith Jones Müller O'Brien Nguyen García widget gadget sprocket "
         "bolt nut screw lamp desk chair table").split()
CARRIERS = ["AA", "UA", "DL", "WN", "B6", "AS", "NK", "F9"]
EPOCH = dt.datetime(2015, 1, 1)


class Column:
    """One column: its name, raw cells (None = null), intended class, and pyarrow's defensibility."""

    def __init__(self, name, cells, klass, quoted_strings=False, defensible=True, note=""):
        self.name = name
        self.cells = cells
        self.klass = klass
        self.quoted_strings = quoted_strings  # R quotes text cells
        self.defensible = defensible
        self.note = note


def nullify(r, cells, p):
    return [None if r.random() < p else c for c in cells]


def ints(r, n, lo=-1000, hi=100000):
    return [str(r.randint(lo, hi)) for _ in range(n)]


def floats(r, n, style):
    out = []
    for _ in range(n):
        x = r.choice([r.uniform(-100, 100), r.uniform(0, 1) * 10 ** r.randint(-6, 6), r.gauss(0, 1)])
        if style == "fixed2":
            out.append(f"{x:.2f}")
        elif style == "repr":  # pandas / Python: 1e-05, 0.1, 12345.678
            out.append(repr(x) if r.random() < 0.7 else repr(round(x, 3)))
        elif style == "R":  # R: 15 significant digits, 1e-05
            out.append(f"{x:.15g}")
        else:
            out.append(f"{x:.3f}")
    return out


def dates(r, n, fmt="%Y-%m-%d"):
    return [(EPOCH + dt.timedelta(days=r.randint(0, 3000))).strftime(fmt) for _ in range(n)]


def timestamps(r, n, style):
    out = []
    for _ in range(n):
        t = EPOCH + dt.timedelta(seconds=r.randint(0, 300_000_000), microseconds=r.randint(0, 999_999))
        if style == "space":
            out.append(t.strftime("%Y-%m-%d %H:%M:%S"))
        elif style == "Z":
            out.append(t.strftime("%Y-%m-%dT%H:%M:%SZ"))
        elif style == "Zmillis":
            out.append(t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z")
        elif style == "micros+00":  # PostgreSQL
            out.append(t.strftime("%Y-%m-%d %H:%M:%S.%f") + "+00")
        elif style == "offset":
            h = r.choice([-5, 0, 1, 2, 9])
            out.append(t.strftime("%Y-%m-%dT%H:%M:%S") + f"{'+' if h >= 0 else '-'}{abs(h):02d}:00")
        else:  # micros without zone (MySQL DATETIME(6))
            out.append(t.strftime("%Y-%m-%d %H:%M:%S.%f"))
    return out


def words(r, n, k=2):
    return [" ".join(r.choice(WORDS) for _ in range(r.randint(1, k))) for _ in range(n)]


def tricky_text(r, n):
    """Text with commas, quotes, embedded newlines, now and then."""
    out = []
    for _ in range(n):
        w = " ".join(r.choice(WORDS) for _ in range(r.randint(1, 4)))
        roll = r.random()
        if roll < 0.05:
            w += ', ' + r.choice(WORDS)
        elif roll < 0.08:
            w = f'He said "{w}"'
        elif roll < 0.10:
            w = w + "\n" + r.choice(WORDS)
        out.append(w)
    return out


def bools(r, n, spelling):
    t, f = spelling
    return [t if r.random() < 0.5 else f for _ in range(n)]


def zips(r, n):
    return [f"{r.randint(0, 99999):05d}" for _ in range(n)]


# ---- families -------------------------------------------------------------------------------

def fam_r(r, n):
    na = 0.05 if r.random() < 0.7 else 0.3
    cols = [
        Column("", [str(i + 1) for i in range(n)], "int", quoted_strings=True),
        Column("id", ints(r, n, 1, 10**6), "int"),
        Column("name", nullify(r, tricky_text(r, n), na), "text", quoted_strings=True),
        Column("score", nullify(r, floats(r, n, "R"), na), "float"),
        Column("passed", nullify(r, bools(r, n, ("TRUE", "FALSE")), na), "bool"),
        Column("day", nullify(r, dates(r, n), na), "date", quoted_strings=True),
        Column("group", words(r, n, 1), "text", quoted_strings=True),
    ]
    if r.random() < 0.5:
        cols = [c for c in cols if c.name != ""]
    return dict(cols=cols, delimiter=",", null="NA", quote="R", family="r-write-csv")


def fam_pandas(r, n):
    na = r.choice([0.0, 0.05, 0.2])
    cols = [
        Column("", [str(i) for i in range(n)], "int"),
        Column("city", nullify(r, words(r, n, 2), na), "text"),
        Column("temp", nullify(r, floats(r, n, "repr"), na), "float"),
        Column("small", nullify(r, [repr(r.uniform(0, 1e-4)) for _ in range(n)], na), "float"),
        Column("count", ints(r, n, 0, 500), "int"),
        Column("flag", bools(r, n, ("True", "False")), "bool"),
        Column("when", nullify(r, timestamps(r, n, "space"), na), "date/time"),
        Column("whole_floats", nullify(r, [f"{float(r.randint(0, 99))}" for _ in range(n)], na), "float"),
    ]
    if r.random() < 0.4:
        cols = cols[1:]
    return dict(cols=cols, delimiter=",", null="", quote="minimal", family="pandas-to-csv")


def fam_excel(r, n):
    comma = r.random() < 0.8
    fmt = (lambda x: f"{x:.2f}".replace(".", ",")) if comma else (lambda x: f"{x:.2f}")
    cols = [
        Column("Artikel", words(r, n, 3), "text"),
        Column("Preis", [fmt(r.uniform(0, 500)) for _ in range(n)], "float"),
        Column("Menge", ints(r, n, 0, 300), "int"),
        Column("Datum", dates(r, n, "%d/%m/%Y" if r.random() < 0.5 else "%d.%m.%Y"), "text"),
        Column("Lieferdatum", nullify(r, dates(r, n), 0.1), "date"),
        Column("Bemerkung", nullify(r, words(r, n, 4), 0.6), "text"),
    ]
    trailing = r.randint(0, 2)
    for _ in range(trailing):
        cols.append(Column("", [None] * n, "null"))
    return dict(cols=cols, delimiter=";" if comma or r.random() < 0.5 else ",", decimal_comma=comma,
                null="", quote="minimal", crlf=True, bom=r.random() < 0.6, family="excel")


def fam_db(r, n):
    null = r.choice(["NULL", "\\N"])
    cols = [
        Column("id", [str(i + 1) for i in range(n)], "int"),
        Column("user_id", nullify(r, ints(r, n, 1, 5000), 0.1), "int"),
        Column("amount", nullify(r, [f"{r.uniform(0, 1e4):.2f}" for _ in range(n)], 0.1), "float"),
        Column("created_at", timestamps(r, n, r.choice(["micros+00", "offset", "micros"])), "date/time"),
        Column("deleted_at", nullify(r, timestamps(r, n, "micros+00"), 0.9), "date/time"),
        Column("status", [r.choice(["active", "closed", "pending"]) for _ in range(n)], "text"),
        Column("note", nullify(r, tricky_text(r, n), 0.5), "text"),
    ]
    return dict(cols=cols, delimiter=r.choice([",", ",", "\t"]), null=null,
                quote=r.choice(["minimal", "all"]), family="db-dump")


def fam_logger(r, n):
    start = EPOCH + dt.timedelta(days=r.randint(0, 2000))
    step = r.choice([1, 10, 60])
    z = r.choice(["Z", "Zmillis", "space"])
    times = []
    for i in range(n):
        t = start + dt.timedelta(seconds=i * step, milliseconds=r.randint(0, 999) if z == "Zmillis" else 0)
        times.append(t.strftime("%Y-%m-%dT%H:%M:%SZ") if z == "Z" else
                     (t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z") if z == "Zmillis"
                     else t.strftime("%Y-%m-%d %H:%M:%S"))
    cols = [
        Column("timestamp", times, "date/time"),
        Column("sensor", [f"s{r.randint(1, 20)}" for _ in range(n)], "text"),
        Column("temperature", nullify(r, [f"{r.gauss(20, 5):.1f}" for _ in range(n)], 0.02), "float"),
        Column("humidity", nullify(r, ints(r, n, 0, 100), 0.02), "int"),
        Column("ok", bools(r, n, ("true", "false")), "bool"),
        Column("level", [r.choice(["INFO", "WARN", "ERROR", "DEBUG"]) for _ in range(n)], "text"),
    ]
    return dict(cols=cols, delimiter=r.choice([",", "\t", "|"]), null=r.choice(["", "NaN", "null"]),
                quote="minimal", family="logger")


def fam_wide(r, n):
    cols = [
        Column("Year", [str(r.choice([2007, 2008])) for _ in range(n)], "int"),
        Column("Month", [str(r.randint(1, 12)) for _ in range(n)], "int"),
        Column("DayofMonth", [str(r.randint(1, 28)) for _ in range(n)], "int"),
        Column("FlightDate", dates(r, n), "date"),
        Column("UniqueCarrier", [r.choice(CARRIERS) for _ in range(n)], "text"),
        Column("FlightNum", [str(r.randint(1, 7000)) for _ in range(n)], "int"),
        Column("TailNum", [f"N{r.randint(100, 999)}{r.choice('ABCDXYZ')}{r.choice('ABCDXYZ')}" for _ in range(n)], "text"),
    ]
    for name in ["DepTime", "ArrTime", "ActualElapsedTime", "AirTime", "ArrDelay", "DepDelay", "Distance",
                 "TaxiIn", "TaxiOut", "CarrierDelay", "WeatherDelay", "NASDelay", "SecurityDelay",
                 "LateAircraftDelay"][: r.randint(6, 14)]:
        cols.append(Column(name, nullify(r, ints(r, n, -30, 2400), r.choice([0.0, 0.02, 0.5])), "int"))
    cols.append(Column("Cancelled", [r.choice("01") for _ in range(n)], "int"))
    cols.append(Column("CancellationCode", nullify(r, [r.choice("ABC") for _ in range(n)], 0.97), "text"))
    for k in range(r.randint(0, 30)):
        cols.append(Column(f"stat_{k}", nullify(r, floats(r, n, "other"), 0.05), "float"))
    return dict(cols=cols, delimiter=",", null=r.choice(["NA", ""]), quote="minimal", family="wide")


def fam_alltext(r, n):
    cols = [Column(name, words(r, n, 2), "text") for name in
            r.sample(["first_name", "last_name", "city", "country", "street", "company", "title", "email"],
                     r.randint(2, 6))]
    return dict(cols=cols, delimiter=",", null="", quote=r.choice(["minimal", "all"]), family="all-text")


def fam_numeric_headers(r, n):
    years = list(range(r.randint(1990, 2010), 2024))[: r.randint(3, 12)]
    cols = [Column("country", words(r, n, 1), "text")]
    for y in years:
        cells = floats(r, n, "fixed2") if r.random() < 0.5 else ints(r, n)
        cols.append(Column(str(y), nullify(r, cells, 0.1), None))
    for c in cols[1:]:
        c.klass = "float" if any(x is not None and "." in x for x in c.cells) else "int"
    return dict(cols=cols, delimiter=",", null=r.choice(["NA", ""]),
                quote="header" if r.random() < 0.5 else "all", family="numeric-headers")


def fam_na_first(r, n):
    k = r.randint(1, 20)
    cols = [
        Column("id", [str(i) for i in range(1, n + 1)], "int"),
        Column("value", [None] * min(k, n) + floats(r, max(n - k, 0), "fixed2"), "float"),
        Column("count", [None] * min(k, n) + ints(r, max(n - k, 0)), "int"),
        Column("label", [None] * min(k, n) + words(r, max(n - k, 0)), "text"),
        Column("day", [None] * min(k, n) + dates(r, max(n - k, 0)), "date"),
    ]
    cols = [cols[0]] + r.sample(cols[1:], 4) if r.random() < 0.5 else cols[1:]
    return dict(cols=cols, delimiter=",", null=r.choice(["NA", "", "N/A", "NULL"]), quote="minimal",
                family="na-first-rows")


def fam_leading_zeros(r, n):
    cols = [
        Column("zip", zips(r, n), "text", defensible=False, note="leading zeros: pyarrow drops them"),
        Column("customer_id", [f"{r.randint(1, 99999):07d}" for _ in range(n)], "text", defensible=False,
               note="leading zeros: pyarrow drops them"),
        Column("amount", [f"{r.uniform(0, 100):.2f}" for _ in range(n)], "float"),
        Column("n", ints(r, n, 0, 9), "int"),
    ]
    return dict(cols=cols, delimiter=r.choice([",", ";", "\t"]), null="", quote="minimal", family="leading-zeros")


def fam_seps(r, n):
    cols = [
        Column("code", [f"{r.choice('ABCDEFG')}{r.randint(10, 99)}" for _ in range(n)], "text"),
        Column("label", words(r, n, 3), "text"),
        Column("weight", nullify(r, floats(r, n, "fixed2"), 0.05), "float"),
        Column("qty", ints(r, n, 0, 1000), "int"),
        Column("day", dates(r, n), "date"),
    ]
    return dict(cols=cols, delimiter=r.choice(["\t", "|"]), null=r.choice(["", "NA"]), quote="minimal",
                family="tab-pipe")


def fam_headerless(r, n):
    cols = [
        Column("no", [str(i + 1) for i in range(n)], "int"),
        Column("name", [r.choice(["aaa", "bbb", "ccc", "ddd"]) for _ in range(n)], "text"),
        Column("score", ints(r, n, 0, 100), "int"),
    ]
    if r.random() < 0.4:
        cols.append(Column("x", floats(r, n, "fixed2"), "float"))
    return dict(cols=cols, delimiter=",", null="", quote="minimal", header=False, family="headerless")


def fam_widening(r, n):
    n = max(n, r.randint(12_000, 30_000))
    at = r.randint(10_050, n - 1)
    to_float = ints(r, n)
    to_float[at] = "3.25"
    to_text = ints(r, n)
    to_text[at] = "unknown"
    bool_text = bools(r, n, ("true", "false"))
    bool_text[r.randint(10_050, n - 1)] = "maybe"
    late_date = [None] * n
    for i in range(at, n):
        late_date[i] = dates(r, 1)[0]
    cols = [
        Column("id", [str(i) for i in range(n)], "int"),
        Column("int_then_float", to_float, "float"),
        Column("int_then_text", to_text, "text"),
        Column("bool_then_text", bool_text, "text"),
        Column("null_then_date", late_date, "date"),
        Column("plain", floats(r, n, "fixed2"), "float"),
    ]
    return dict(cols=cols, delimiter=",", null="", quote="minimal", family="late-widening")


def fam_header_only(r, n):
    fam = r.choice([fam_r, fam_pandas, fam_db, fam_alltext, fam_seps, fam_wide])(r, 1)
    for c in fam["cols"]:
        c.cells = []
        c.klass = "null"
    fam["family"] = "header-only"
    return fam


def fam_misc_numbers(r, n):
    special = lambda: r.choice(["Inf", "-Inf", "+5", "1.", ".5", "1E5", "-0.0", "2.5e+10"])  # noqa: E731
    cols = [
        Column("id", [str(i) for i in range(n)], "int"),
        Column("x", [special() if r.random() < 0.2 else f"{r.uniform(-9, 9):.4f}" for _ in range(n)], "float"),
        Column("signed", [r.choice(["+", "-", ""]) + str(r.randint(1, 999)) for _ in range(n)], "int",
               defensible=False, note="pyarrow reads an integer column holding +5 as float64"),
        Column("pct", [f"{r.randint(0, 100)}%" for _ in range(n)], "text"),
        Column("yesno", [r.choice(["yes", "no"]) for _ in range(n)], "text"),
    ]
    return dict(cols=cols, delimiter=",", null="", quote="minimal", family="misc-numbers")


def fam_big_ids(r, n):
    cols = [
        Column("event_id", [str(r.randint(10**19, 10**20 - 1)) for _ in range(n)], "text", defensible=False,
               note="beyond i64: pyarrow reads float64 and rounds"),
        Column("user", words(r, n, 1), "text"),
        Column("value", ints(r, n), "int"),
    ]
    return dict(cols=cols, delimiter=",", null="", quote="minimal", family="big-ids")


def fam_date_time_split(r, n):
    cols = [
        Column("date", dates(r, n), "date"),
        Column("time", [f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}"
                        for _ in range(n)], "date/time"),
        Column("reading", [f"{r.uniform(0, 50):.2f}" for _ in range(n)], "float"),
    ]
    return dict(cols=cols, delimiter=r.choice([",", "\t"]), null="", quote="minimal", family="date-time-split")


FAMILIES = [
    (fam_r, 40), (fam_pandas, 40), (fam_excel, 35), (fam_db, 30), (fam_logger, 25), (fam_wide, 20),
    (fam_alltext, 20), (fam_numeric_headers, 20), (fam_na_first, 20), (fam_leading_zeros, 15),
    (fam_seps, 20), (fam_headerless, 10), (fam_widening, 6), (fam_header_only, 8),
    (fam_misc_numbers, 12), (fam_big_ids, 8), (fam_date_time_split, 10),
]


def quote(cell, delimiter, force):
    if force or any(ch in cell for ch in (delimiter, '"', "\n", "\r")) or cell != cell.strip() and False:
        return '"' + cell.replace('"', '""') + '"'
    return cell


def render(spec):
    cols, d = spec["cols"], spec["delimiter"]
    style = spec["quote"]
    eol = "\r\n" if spec.get("crlf") else "\n"
    lines = []
    if spec.get("header", True):
        names = [quote(c.name, d, style in ("R", "all", "header")) for c in cols]
        lines.append(d.join(names))
    n = len(cols[0].cells)
    for i in range(n):
        row = []
        for c in cols:
            v = c.cells[i]
            if v is None:
                row.append(spec["null"] if style != "all" or spec["null"] == "" else quote(spec["null"], d, True))
            else:
                row.append(quote(v, d, style == "all" or (style == "R" and c.quoted_strings)))
        lines.append(d.join(row))
    text = eol.join(lines) + eol
    return ("\ufeff" if spec.get("bom") else "") + text


def main():
    out = sys.argv[1]
    count = 330
    seed = 20261202
    args = sys.argv[2:]
    if "--files" in args:
        count = int(args[args.index("--files") + 1])
    if "--seed" in args:
        seed = int(args[args.index("--seed") + 1])
    r = random.Random(seed)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    weights = [w for _, w in FAMILIES]
    manifest = {}
    for k in range(count):
        fam = r.choices([f for f, _ in FAMILIES], weights)[0]
        n = r.choice([1, 3, 20, 100, 500, 2000, 5000, 15000]) if r.random() < 0.97 else 40_000
        spec = fam(r, n)
        ext = ".tsv" if spec["delimiter"] == "\t" and r.random() < 0.5 else ".csv"
        name = f"{k:03d}-{spec['family']}{ext}"
        text = render(spec)
        path = os.path.join(out, name)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        rows = len(spec["cols"][0].cells)
        for c in spec["cols"]:
            if c.name == "zip" and not any(v and len(v) > 1 and v[0] == "0" for v in c.cells):
                # No value with a leading zero here: pyarrow's integers lose nothing.
                c.defensible, c.klass, c.note = True, "int", ""
        entry = dict(
            family=spec["family"], delimiter=spec["delimiter"], decimal_comma=spec.get("decimal_comma", False),
            header=spec.get("header", True), rows=rows, names=[c.name for c in spec["cols"]],
            classes=[c.klass for c in spec["cols"]], defensible=[c.defensible for c in spec["cols"]],
            notes=[c.note for c in spec["cols"]], nulls=[spec["null"]])
        manifest[name] = entry
        roll = r.random()
        if roll < 0.15:  # compressed copies
            kind = r.choice(["gz", "zst", "bz2"])
            data = text.encode("utf-8")
            cpath = path + "." + kind
            if kind == "gz":
                with open(cpath, "wb") as f:
                    f.write(gzip.compress(data))
            elif kind == "bz2":
                with open(cpath, "wb") as f:
                    f.write(bz2.compress(data))
            else:
                subprocess.run(["zstd", "-q", "-f", path, "-o", cpath], check=True)
            manifest[name + "." + kind] = dict(entry, family=entry["family"] + "+" + kind)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"{len(manifest)} files in {out}")


if __name__ == "__main__":
    main()

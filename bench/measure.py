"""Timing shared by the benchmark scripts: one command under GNU time, and medians of rounds."""
import re
import statistics
import subprocess
import tempfile


def gnu_time(cmd, env=None):
    """Runs cmd under /usr/bin/time -v: wall s, cpu s, peak RSS MB."""
    with tempfile.NamedTemporaryFile(mode="r", suffix=".time") as report:
        proc = subprocess.run(["/usr/bin/time", "-v", "-o", report.name, *cmd],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        text = open(report.name).read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr.decode()[-2000:]}")

    def field(name):
        return re.search(re.escape(name) + r": (.+)", text).group(1).strip()
    wall = 0.0
    for part in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"):
        wall = wall * 60 + float(part)
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    rss = int(field("Maximum resident set size (kbytes)")) / 1024
    return {"wall": wall, "cpu": cpu, "rss": rss}


def medians(samples):
    """Per-key medians of a list of gnu_time results."""
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}

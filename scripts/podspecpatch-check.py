#!/usr/bin/env python3
"""Every pod size `etl --plan` can suggest merges into a pod the API server accepts.

Argo applies a template's `podSpecPatch` as a strategic merge patch onto the pod
spec (argo-workflows `workflow/util.ApplyPodSpecPatch`: StrategicMergePatch with
`PodSpec`), the template's container being named `main`. A key the patch leaves
out keeps the template's value, so a suggested request can end above the
template's limit, and the API server then refuses the pod.

For each size tier (sizes at and around each boundary), this script runs the real
`etl --plan --bucket B --key K` against a HEAD-only S3 endpoint on 127.0.0.1 that
reports that size, puts the `resources` of its output into every `podSpecPatch`
under workflows/ that takes `{{inputs.parameters.resources}}`, merges it with
`kubectl patch --local --type strategic` onto a pod holding the template's
container, and checks requests <= limits for cpu and memory.

Usage: scripts/podspecpatch-check.py BIN_DIR
Needs python3, PyYAML and kubectl. Exit status: 0 pass, 1 failure, 2 setup error.
"""
import http.server
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
MIB = 1 << 20
# Around each boundary of the tiers, plus an empty and a huge object.
SIZES = [0, 1, 64 * MIB - 1, 64 * MIB, 64 * MIB + 1, 1024 * MIB - 1, 1024 * MIB,
         1024 * MIB + 1, 100 << 30, 5 << 40]
PARAM = "{{inputs.parameters.resources}}"
SUFFIX = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
          "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60}


def quantity(text):
    """A Kubernetes resource quantity as a number ("250m" -> 0.25, "1Gi" -> 2**30)."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?", str(text))
    if not m:
        raise ValueError(f"not a quantity: {text!r}")
    return float(m.group(1)) * SUFFIX[m.group(2) or ""]


class Head(http.server.BaseHTTPRequestHandler):
    """HeadObject of /<bucket>/<size>.csv: that many bytes."""

    def do_HEAD(self):  # noqa: N802 (http.server API)
        m = re.fullmatch(r"/[^/]+/([0-9]+)\.csv", self.path.split("?")[0])
        if not m:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", m.group(1))
        self.send_header("ETag", '"0123456789abcdef0123456789abcdef"')
        self.send_header("Last-Modified", "Fri, 14 Apr 2023 10:00:00 GMT")
        self.send_header("Content-Type", "text/csv")
        self.end_headers()

    def log_message(self, *args):
        pass


def plans(bin_dir):
    """{size: resources JSON} as `etl --plan` prints them."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Head)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir(),
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}",
           "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "check", "AWS_SECRET_ACCESS_KEY": "check",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_MAX_ATTEMPTS": "1", "RUST_LOG": "warn"}
    out = {}
    try:
        for size in SIZES:
            proc = subprocess.run([str(bin_dir / "etl"), "--bucket", "etlproj", "--key", f"{size}.csv",
                                   "--plan"], env=env, capture_output=True, text=True, timeout=60)
            if proc.returncode != 0:
                raise RuntimeError(f"etl --plan (size {size}) exited {proc.returncode}: {proc.stderr[-800:]}")
            line = json.loads(proc.stdout.splitlines()[0])
            if line.get("size") != size:
                raise RuntimeError(f"etl --plan reported size {line.get('size')}, the object has {size}")
            out[size] = line["resources"]
    finally:
        server.shutdown()
    return out


def patched_templates():
    for f in sorted((ROOT / "workflows").rglob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") not in ("WorkflowTemplate", "CronWorkflow"):
                continue
            spec = doc["spec"].get("workflowSpec", doc["spec"])
            for t in spec.get("templates") or []:
                if PARAM in (t.get("podSpecPatch") or ""):
                    yield f"{doc['kind']}/{doc['metadata']['name']}/{t['name']}", t


def merge(template, resources, tmp):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"},
           "spec": {"containers": [{"name": "main", "image": template["container"]["image"],
                                    "resources": template["container"].get("resources") or {}}]}}
    path = pathlib.Path(tmp) / "pod.json"
    path.write_text(json.dumps(pod))
    patch_text = template["podSpecPatch"].replace(PARAM, json.dumps(resources, separators=(",", ":")))
    patch = {"spec": json.loads(patch_text)}
    proc = subprocess.run(["kubectl", "patch", "--local", "--type", "strategic", "-f", str(path),
                           "-p", json.dumps(patch), "-o", "json"], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl patch failed: {proc.stderr.strip()}")
    merged = json.loads(proc.stdout)["spec"]["containers"]
    return next(c for c in merged if c["name"] == "main")["resources"]


def main(argv):
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    bin_dir = pathlib.Path(argv[0]).resolve()
    if not (bin_dir / "etl").is_file():
        print(f"podspecpatch-check: FAIL: {bin_dir}/etl not found", file=sys.stderr)
        return 1
    if shutil.which("kubectl") is None:
        print("podspecpatch-check: kubectl not found: podSpecPatch merge not checked")
        return 0
    templates = list(patched_templates())
    if not templates:
        print("podspecpatch-check: FAIL: no template takes {{inputs.parameters.resources}}", file=sys.stderr)
        return 1
    try:
        suggested = plans(bin_dir)
    except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
        print(f"podspecpatch-check: FAIL: {e}", file=sys.stderr)
        return 1
    failures = checked = 0
    with tempfile.TemporaryDirectory(prefix="podspecpatch-") as tmp:
        for label, template in templates:
            for size, resources in suggested.items():
                checked += 1
                try:
                    merged = merge(template, resources, tmp)
                    problems = []
                    for key in ("cpu", "memory"):
                        request = (merged.get("requests") or {}).get(key)
                        limit = (merged.get("limits") or {}).get(key)
                        if request is None:
                            problems.append(f"no {key} request")
                        elif limit is not None and quantity(request) > quantity(limit):
                            problems.append(f"{key} request {request} above limit {limit}")
                except (RuntimeError, ValueError, StopIteration, subprocess.TimeoutExpired) as e:
                    problems = [str(e)]
                    merged = None
                shown = json.dumps(merged, sort_keys=True, separators=(",", ":"))
                if problems:
                    failures += 1
                    print(f"FAIL {label} size {size}: {'; '.join(problems)}\n     merged: {shown}")
                else:
                    print(f"ok   {label} size {size}: {shown}")
    print(f"podspecpatch-check: {checked} merges checked, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

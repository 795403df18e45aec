#!/usr/bin/env python3
"""Contract test: WorkflowTemplates and CronWorkflows nobody's Sensor starts
(submitted by hand or by a schedule: the catch-up sweep and the backfill) ->
worker command lines the binaries accept.

scripts/sensor-contract.py covers the templates Sensors create workflows from,
with recorded events. The others take their parameters from a user or from
their defaults, so this test resolves them with sample parameters (SAMPLES
below, defaults otherwise):

1. From the entrypoint, steps/dag templates are walked as Argo would:
   `{{workflow.parameters.X}}`, `{{inputs.parameters.X}}` (through step/task
   arguments) and `{{item}}` are substituted. Loops: `withItems`,
   `withSequence` and `withParam`; a `withParam` fed by
   `{{steps.S.outputs.result}}` / `{{tasks.S.outputs.result}}` of a python3
   `script` template runs that script here (python3, its env resolved), so the
   fan-out items are the real ones; SAMPLES may state what they must be.
2. Each container running one of our binaries is run (binaries from BIN_DIR)
   with its resolved arguments plus `--dry-run` (`--plan` dropped),
   `--result-dir` in a scratch folder, env from the `envFrom` ConfigMaps plus
   placeholder credentials, and every S3 endpoint pointing at a closed port.
   A prefix sweep's dry run lists objects, so it fails to connect: exit 1 is
   expected, exit 0 is fine. Any other exit code, or clap's usage errors on
   stderr ("error: unexpected argument", "error: invalid value", "Usage:"),
   fail the test: the manifest and the binary disagree about the command line.
   For a loop, the first and the last item are run.
3. Every `etl-notify` container (the exit handlers, in every WorkflowTemplate
   and CronWorkflow) : when BIN_DIR holds `etl-notify`, its `--help` must
   exit 0 and name each env var the manifest sets (`[env: NAME`): the binary
   reads what the manifest passes. Without the binary this part is skipped
   with a message.

Usage:
  scripts/template-contract.py BIN_DIR        e.g. target/debug
  scripts/template-contract.py --self-test    resolve only: print the command lines

Needs python3 and PyYAML only. Exit status: 0 pass, 1 failure, 2 setup error.
"""
import importlib.util
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("sensor_contract", HERE / "sensor-contract.py")
sc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sc)

ContractError = sc.ContractError
ROOT = sc.ROOT

# Sample workflow parameters per "Kind/name", and what the loops must yield.
# The backfill period crosses a month end, a leap-year February and a year end.
SAMPLES = {
    "WorkflowTemplate/etl-backfill": {
        "parameters": {"first-day": "20231230", "last-day": "20240302"},
        "items": {"main/day": {"count": 64, "first": "20231230", "last": "20240302",
                               "contains": ["20231231", "20240101", "20240131", "20240201",
                                            "20240229", "20240301"]}},
        # Bad periods must fail in the script step, before any fan-out.
        "rejects": [
            {"first-day": "20230414", "last-day": "20230401"},
            {"first-day": "20230231", "last-day": "20230301"},
            {"first-day": "2023041", "last-day": "20230414"},
            {"first-day": "20200101", "last-day": "20230101"},
        ],
    },
}
USAGE_ERRORS = ("error: unexpected argument", "error: invalid value", "Usage:",
                "error: the following required arguments", "error: a value is required",
                "cannot be used with")


def resolve_scope_text(text, scope):
    return sc.substitute(str(text), scope)


def loop_items(call, scope, outputs):
    """Items of a step/task loop (None: no loop)."""
    if "withItems" in call:
        return list(call["withItems"])
    if "withSequence" in call:
        seq = call["withSequence"]
        start = int(resolve_scope_text(seq.get("start", "0"), scope))
        if "count" in seq:
            end = start + int(resolve_scope_text(seq["count"], scope)) - 1
        else:
            end = int(resolve_scope_text(seq["end"], scope))
        fmt = seq.get("format")
        return [(fmt % n) if fmt else str(n) for n in range(start, end + 1)]
    if "withParam" in call:
        text = call["withParam"]
        m = re.fullmatch(r"\{\{\s*(?:steps|tasks)\.([\w-]+)\.outputs\.result\s*\}\}", text.strip())
        if m:
            if m.group(1) not in outputs:
                raise ContractError(f"withParam {text}: step {m.group(1)} has no result here")
            value = outputs[m.group(1)]
        else:
            value = resolve_scope_text(text, scope)
        try:
            items = json.loads(value)
        except ValueError:
            raise ContractError(f"withParam {text}: not a JSON list: {value[:200]!r}")
        if not isinstance(items, list):
            raise ContractError(f"withParam {text}: not a JSON list: {value[:200]!r}")
        return items
    return None


def item_scope(scope, item):
    s = dict(scope)
    if isinstance(item, dict):
        s["item"] = json.dumps(item, separators=(",", ":"))
        for k, v in item.items():
            s[f"item.{k}"] = v if isinstance(v, str) else json.dumps(v)
    else:
        s["item"] = item if isinstance(item, str) else json.dumps(item)
    return s


def run_script(tmpl, scope):
    """Run a python3 script template locally; returns (exit code, stdout, stderr)."""
    script = tmpl["script"]
    if (script.get("command") or [""])[0] not in ("python3", "python"):
        raise ContractError(f"script template {tmpl['name']}: only python3 scripts can be run here")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for e in script.get("env") or []:
        if "value" in e:
            env[e["name"]] = resolve_scope_text(e["value"], scope)
    source = resolve_scope_text(script["source"], scope)
    proc = subprocess.run([sys.executable, "-c", source], env=env, capture_output=True,
                          text=True, timeout=30)
    return proc.returncode, proc.stdout.strip(), proc.stderr.strip()


def workflow_runs(spec, params, label):
    """Resolved worker command lines, and the items of each loop, for one spec."""
    glob = {f"workflow.parameters.{k}": str(v) for k, v in params.items()}
    templates = {t["name"]: t for t in spec["templates"]}
    runs, loops = [], {}

    def visit(name, inputs, depth=0):
        if depth > 10:
            raise ContractError("template nesting too deep")
        tmpl = templates[name]
        scope = dict(glob)
        for p in (tmpl.get("inputs") or {}).get("parameters") or []:
            if p["name"] in inputs:
                scope[f"inputs.parameters.{p['name']}"] = inputs[p["name"]]
            elif "value" in p or "default" in p:
                scope[f"inputs.parameters.{p['name']}"] = resolve_scope_text(p.get("value", p.get("default")), glob)
            else:
                raise ContractError(f"{name}: input parameter {p['name']} not given")
        outputs = {}
        groups = [g for g in tmpl.get("steps") or []]
        groups += [[t] for t in (tmpl.get("dag") or {}).get("tasks") or []]
        for group in groups:
            for call in group:
                items = loop_items(call, scope, outputs)
                if items is not None:
                    loops[f"{name}/{call['name']}"] = items
                    chosen = [items[0], items[-1]] if len(items) > 1 else items
                else:
                    chosen = [None]
                for item in chosen:
                    s = scope if item is None else item_scope(scope, item)
                    args = {p["name"]: resolve_scope_text(p.get("value", ""), s)
                            for p in (call.get("arguments") or {}).get("parameters") or []}
                    result = visit(call["template"], args, depth + 1)
                    if result is not None:
                        outputs[call["name"]] = result
        if "script" in tmpl:
            code, out, err = run_script(tmpl, scope)
            if code != 0:
                raise ContractError(f"script {name} exited {code}: {err[-500:]}")
            return out
        container = tmpl.get("container")
        if container and container.get("command") and container["command"][0] in sc.BINARIES:
            line = [resolve_scope_text(x, scope) for x in container["command"] + (container.get("args") or [])]
            runs.append((name, container, line))
        return None

    visit(spec["entrypoint"], {})
    return runs, loops


def targets(docs):
    """(label, spec) of WorkflowTemplates no Sensor references, and of CronWorkflows."""
    referenced = set()
    for _, d in docs:
        if d["kind"] == "Sensor":
            for trig in d["spec"].get("triggers") or []:
                for kind in ("k8s", "argoWorkflow"):
                    res = ((trig["template"].get(kind) or {}).get("source") or {}).get("resource") or {}
                    ref = ((res.get("spec") or {}).get("workflowTemplateRef") or {}).get("name")
                    if ref:
                        referenced.add(ref)
    for _, d in docs:
        if d["kind"] == "WorkflowTemplate" and d["metadata"]["name"] not in referenced:
            yield f"WorkflowTemplate/{d['metadata']['name']}", d["spec"]
        elif d["kind"] == "CronWorkflow":
            yield f"CronWorkflow/{d['metadata']['name']}", d["spec"]["workflowSpec"]


def params_of(spec, sample):
    params = {}
    for p in (spec.get("arguments") or {}).get("parameters") or []:
        if "value" in p:
            params[p["name"]] = p["value"]
    params.update(sample)
    missing = [p["name"] for p in (spec.get("arguments") or {}).get("parameters") or []
               if p["name"] not in params]
    if missing:
        raise ContractError(f"no sample value for required parameter(s) {missing}: add them to SAMPLES")
    return params


def check_loops(label, loops, expect):
    problems = []
    for where, exp in expect.items():
        items = loops.get(where)
        if items is None:
            problems.append(f"loop {where}: not found")
            continue
        if "count" in exp and len(items) != exp["count"]:
            problems.append(f"loop {where}: {len(items)} items, expected {exp['count']}")
        if "first" in exp and items[:1] != [exp["first"]]:
            problems.append(f"loop {where}: first item {items[:1]}, expected {exp['first']!r}")
        if "last" in exp and items[-1:] != [exp["last"]]:
            problems.append(f"loop {where}: last item {items[-1:]}, expected {exp['last']!r}")
        for want in exp.get("contains") or []:
            if want not in items:
                problems.append(f"loop {where}: {want!r} missing")
        if len(set(map(str, items))) != len(items):
            problems.append(f"loop {where}: duplicate items")
    return problems


def run_binary(bin_dir, container, line, configmaps):
    with tempfile.TemporaryDirectory(prefix="template-contract-") as tmp:
        cmd = sc.dry_run_line(line, os.path.join(tmp, "result"))
        env = sc.container_env(container, configmaps)
        env.update({"AWS_ENDPOINT_URL_S3": sc.NOWHERE, "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_ACCESS_KEY_ID": "contract-test", "AWS_SECRET_ACCESS_KEY": "contract-test",
                    "AWS_MAX_ATTEMPTS": "1"})
        for k in ("AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
            env.pop(k, None)
        proc = subprocess.run([str(bin_dir / cmd[0])] + cmd[1:], env=env, capture_output=True,
                              text=True, timeout=120, cwd=tmp)
        return cmd, proc


def notify_containers(docs):
    for _, d in docs:
        if d["kind"] not in ("WorkflowTemplate", "CronWorkflow"):
            continue
        spec = d["spec"].get("workflowSpec", d["spec"])
        for t in spec.get("templates") or []:
            c = t.get("container") or {}
            if (c.get("command") or [None])[0] == "etl-notify":
                yield f"{d['kind']}/{d['metadata']['name']}/{t['name']}", c


def check_notify(bin_dir, docs):
    """(checked, failures) of the etl-notify containers against `etl-notify --help`."""
    found = list(notify_containers(docs))
    exe = bin_dir / "etl-notify" if bin_dir is not None else None
    if exe is None or not exe.is_file():
        where = "no binary folder" if bin_dir is None else f"{bin_dir}/etl-notify not built"
        print(f"skip {len(found)} etl-notify container(s): {where}")
        return 0, 0
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=30,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    failures = 0
    for label, c in found:
        names = [e["name"] for e in c.get("env") or []]
        missing = [n for n in names if f"[env: {n}" not in proc.stdout]
        if proc.returncode != 0 or missing:
            failures += 1
            print(f"FAIL {label}: etl-notify --help exit {proc.returncode}; env not read by the binary: {missing}")
        else:
            print(f"ok   {label}: etl-notify reads {', '.join(names)}")
    return len(found), failures


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    self_test = argv[0] == "--self-test"
    bin_dir = None if self_test else pathlib.Path(argv[0]).resolve()
    if bin_dir is not None:
        missing = sorted(b for b in sc.BINARIES - {"ftp-watch"} if not (bin_dir / b).is_file())
        if missing:
            print(f"template-contract: FAIL: binaries not found in {bin_dir}: {', '.join(missing)}",
                  file=sys.stderr)
            return 1
    docs = sc.load_manifests()
    configmaps = sc.by_kind(docs, "ConfigMap")
    checked = failures = 0
    found = list(targets(docs))
    if not found:
        print("template-contract: FAIL: no CronWorkflow or stand-alone WorkflowTemplate", file=sys.stderr)
        return 1
    for label, spec in found:
        sample = SAMPLES.get(label, {})
        try:
            params = params_of(spec, sample.get("parameters") or {})
            runs, loops = workflow_runs(spec, params, label)
            if not runs:
                raise ContractError("no container runs a worker binary")
            problems = check_loops(label, loops, sample.get("items") or {})
            for bad in sample.get("rejects") or []:
                try:
                    workflow_runs(spec, params_of(spec, bad), label)
                    problems.append(f"parameters {bad} accepted; the workflow must fail before the fan-out")
                except ContractError:
                    pass
            if problems:
                raise ContractError("; ".join(problems))
            for where, items in sorted(loops.items()):
                print(f"ok   {label} loop {where}: {len(items)} item(s) {items[0]}..{items[-1]}"
                      if items else f"ok   {label} loop {where}: no items")
        except ContractError as e:
            failures += 1
            print(f"FAIL {label}: {e}")
            continue
        for tname, container, line in runs:
            checked += 1
            leftover = [a for a in line if "{{" in a]
            if leftover:
                failures += 1
                print(f"FAIL {label}/{tname}: unresolved Argo tags in the command line: {leftover}")
                continue
            if self_test:
                print(f"ok   {label}/{tname}: {' '.join(shlex.quote(a) for a in line)}")
                continue
            try:
                cmd, proc = run_binary(bin_dir, container, line, configmaps)
            except (OSError, subprocess.TimeoutExpired) as e:
                failures += 1
                print(f"FAIL {label}/{tname}: {e}")
                continue
            shown = " ".join(shlex.quote(a) for a in cmd)
            usage = [m for m in USAGE_ERRORS if m in proc.stderr]
            if proc.returncode not in (0, 1) or usage:
                failures += 1
                print(f"FAIL {label}/{tname}: exit code {proc.returncode}\n     {shown}")
                if proc.stderr.strip():
                    print("     stderr: " + proc.stderr.strip()[-1500:].replace("\n", "\n             "))
            else:
                why = "no I/O needed" if proc.returncode == 0 else "arguments accepted, S3 unreachable as intended"
                print(f"ok   {label}/{tname} (exit {proc.returncode}: {why})\n     {shown}")
    notified, notify_failures = check_notify(bin_dir, docs)
    checked += notified
    failures += notify_failures
    mode = "command lines resolved" if self_test else "command lines run"
    print(f"template-contract: {checked} {mode}, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Contract test: Argo Events Sensor parameter mapping -> worker command line.

For every Sensor under workflows/, take the recorded event data fixtures of its
dependency (testdata/argo-events/<eventSourceName>.<eventName>[.<case>].json,
the event *data* as the Sensor sees it), keep those its data filters accept,
and do what Argo does:

1. Sensor trigger parameters: `src.dataKey` is a gjson path into the event
   data (subset: dotted keys, array indices, `\\.` escapes, `|` pipes, the
   `@this` and `@fromstr` modifiers); an object/array result becomes compact
   JSON text, a string is used as is (unless `useRawData`). The value is set at
   `dest` (sjson-like dotted path, numeric parts index lists) in the trigger's
   Workflow resource. A missing key falls back to `src.value`.
2. The Workflow's `workflowTemplateRef` names a WorkflowTemplate; its
   `spec.arguments.parameters` defaults are overridden by the Workflow's.
3. From the entrypoint, steps/dag templates are walked; each container
   template running one of our binaries is resolved: `{{workflow.parameters.X}}`
   and `{{inputs.parameters.X}}` (through the step/task arguments) are
   substituted into `command`/`args`. Expression tags (`{{=...}}`) are left
   alone (they must not appear in a worker's command line).
4. The command runs with `--dry-run` (replacing `--plan`, which does a HEAD),
   `--result-dir` pointed at a scratch folder, binaries from BIN_DIR, env from
   the ConfigMaps in `envFrom` (plus placeholder credentials) and
   AWS_ENDPOINT_URL pointing nowhere: dry-run does no I/O. It must exit 0 and
   print the JSON lines of `<fixture>.expected.jsonl` (each expected field
   must match; extra fields are fine; lists compare as sets; `ftp_path`
   ignores a leading "/").

Usage:
  scripts/sensor-contract.py BIN_DIR        e.g. target/debug
  scripts/sensor-contract.py --self-test    mapping only: print resolved command lines

Needs python3 and PyYAML only. Exit status: 0 pass, 1 failure, 2 setup error.
"""
import copy
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # pragma: no cover
    print("sensor-contract: PyYAML missing (python3 -m pip install pyyaml)", file=sys.stderr)
    sys.exit(2)

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"
FIXTURES = ROOT / "testdata" / "argo-events"
BINARIES = {"etl", "agg", "ftp-etl", "ftp-watch"}
NOWHERE = "http://127.0.0.1:9"  # discard port: any request would fail fast
PLACEHOLDER_SECRETS = {
    "AWS_ACCESS_KEY_ID": "contract-test",
    "AWS_SECRET_ACCESS_KEY": "contract-test",
    "FTP_USER": "contract-test",
    "FTP_PASSWD": "contract-test",
}


class ContractError(Exception):
    pass


# --------------------------------------------------------------------------- manifests

def load_manifests():
    docs = []
    for f in sorted(WORKFLOWS.rglob("*.y*ml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if isinstance(doc, dict) and "kind" in doc and "apiVersion" in doc:
                docs.append((f, doc))
    return docs


def by_kind(docs, kind):
    return {d["metadata"]["name"]: (f, d) for f, d in docs if d["kind"] == kind}


# --------------------------------------------------------------------------- gjson subset

_MISSING = object()


def _split_unescaped(s, sep):
    parts, cur, i = [], "", 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur += s[i + 1]
            i += 2
            continue
        if c == sep:
            parts.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    parts.append(cur)
    return parts


def _apply_component(value, comp):
    if comp == "@this":
        return value
    if comp == "@fromstr":
        if not isinstance(value, str):
            return _MISSING
        try:
            return json.loads(value)
        except ValueError:
            return _MISSING
    if comp.startswith("@") or any(ch in comp for ch in "*?#"):
        raise ContractError(f"gjson feature not supported by this test: {comp!r}")
    if isinstance(value, dict):
        return value.get(comp, _MISSING)
    if isinstance(value, list) and comp.isdigit():
        idx = int(comp)
        return value[idx] if idx < len(value) else _MISSING
    return _MISSING


def gjson_get(data, path):
    """Value at a gjson path, or _MISSING."""
    value = data
    for segment in _split_unescaped_keep_escapes(path, "|"):
        for comp in _split_unescaped(segment, "."):
            value = _apply_component(value, comp)
            if value is _MISSING:
                return _MISSING
    return value


def _split_unescaped_keep_escapes(s, sep):
    """Split on sep (not escaped); keep backslash escapes for the next split."""
    parts, cur, i = [], "", 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            cur += s[i:i + 2]
            i += 2
            continue
        if s[i] == sep:
            parts.append(cur)
            cur = ""
        else:
            cur += s[i]
        i += 1
    parts.append(cur)
    return parts


def gjson_string(value):
    """Argo's rendering of a gjson result when useRawData is false."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------- sensor side

def filter_accepts(dependency, data):
    """Argo data filters (subset: string/number/bool, comparator, value list)."""
    filters = (dependency.get("filters") or {}).get("data") or []
    results = []
    for flt in filters:
        value = gjson_get(data, flt["path"])
        if value is _MISSING:
            results.append(False)
            continue
        typ = flt.get("type", "string")
        comparator = flt.get("comparator", "=")
        wanted = flt.get("value") or []
        if typ == "number":
            actual = float(value)
            ops = {
                "=": lambda a, b: a == b, "!=": lambda a, b: a != b,
                ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
                "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
            }
            ok = any(ops[comparator](actual, float(w)) for w in wanted)
        elif typ == "bool":
            ok = any(str(value).lower() == w.lower() for w in wanted)
            ok = ok if comparator != "!=" else not ok
        else:
            ok = any(re.search(w, gjson_string(value)) for w in wanted)
            ok = ok if comparator != "!=" else not ok
        results.append(ok)
    if not results:
        return True
    if (dependency.get("filters") or {}).get("dataLogicalOperator", "and") == "or":
        return any(results)
    return all(results)


def set_path(obj, dest, value):
    parts = _split_unescaped(dest, ".")
    cur = obj
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(cur, list):
            if part == "-1":
                cur.append(value if last else {})
                cur = cur[-1]
                continue
            idx = int(part)
            while len(cur) <= idx:
                cur.append(None)
            if last:
                cur[idx] = value
            else:
                if cur[idx] is None:
                    cur[idx] = [] if parts[i + 1].isdigit() else {}
                cur = cur[idx]
        else:
            if last:
                cur[part] = value
            else:
                if part not in cur or cur[part] is None:
                    cur[part] = [] if parts[i + 1].isdigit() else {}
                cur = cur[part]


def resolve_param(src, events):
    data = events.get(src["dependencyName"], _MISSING)
    if data is _MISSING:
        if "value" in src:
            return src["value"]
        raise ContractError(f"no event for dependency {src['dependencyName']}")
    if "dataTemplate" in src or "contextKey" in src or "contextTemplate" in src:
        raise ContractError("dataTemplate/contextKey not supported by this test; use dataKey")
    if "dataKey" not in src:
        if "value" in src:
            return src["value"]
        raise ContractError("a parameter without dataKey passes Argo's {context,data} wrapper; use dataKey")
    value = gjson_get(data, src["dataKey"])
    if value is _MISSING:
        if "value" in src:
            return src["value"]
        raise ContractError(f"dataKey {src['dataKey']!r} not found in the event data")
    if src.get("useRawData") and not isinstance(value, str):
        return value
    return gjson_string(value)


def trigger_workflows(sensor, events):
    """Workflow resources the Sensor's triggers would create for these events."""
    out = []
    for trig in sensor["spec"]["triggers"]:
        tmpl = trig["template"]
        kind = "k8s" if "k8s" in tmpl else "argoWorkflow" if "argoWorkflow" in tmpl else None
        if kind is None:
            raise ContractError(f"trigger {tmpl.get('name')}: only k8s/argoWorkflow triggers are supported")
        spec = tmpl[kind]
        if spec.get("operation", "create" if kind == "k8s" else "submit") not in ("create", "submit"):
            continue
        resource = copy.deepcopy((spec.get("source") or {}).get("resource"))
        if not resource:
            raise ContractError(f"trigger {tmpl['name']}: only inline source.resource is supported")
        for param in spec.get("parameters") or []:
            value = resolve_param(param["src"], events)
            op = param.get("operation", "overwrite")
            if op in ("prepend", "append"):
                current = gjson_get(resource, param["dest"])
                current = "" if current is _MISSING else gjson_string(current)
                value = value + current if op == "prepend" else current + value
            set_path(resource, param["dest"], value)
        out.append((tmpl["name"], resource))
    return out


# --------------------------------------------------------------------------- workflow side

TAG = re.compile(r"\{\{\s*([^=][^{}]*?)\s*\}\}")


def substitute(text, scope):
    def repl(m):
        name = m.group(1)
        return scope[name] if name in scope else m.group(0)
    return TAG.sub(repl, text)


def container_runs(wftmpl, workflow):
    """(template name, container, resolved command line) for each worker container."""
    spec = wftmpl["spec"]
    params = {p["name"]: p.get("value", "") for p in (spec.get("arguments") or {}).get("parameters") or []}
    for p in ((workflow.get("spec") or {}).get("arguments") or {}).get("parameters") or []:
        params[p["name"]] = p.get("value", "")
    glob = {f"workflow.parameters.{k}": str(v) for k, v in params.items()}
    templates = {t["name"]: t for t in spec["templates"]}
    entry = (workflow.get("spec") or {}).get("entrypoint") or spec["entrypoint"]
    runs = []

    def visit(name, inputs, depth=0):
        if depth > 10:
            raise ContractError("template nesting too deep")
        tmpl = templates[name]
        scope = dict(glob)
        for p in (tmpl.get("inputs") or {}).get("parameters") or []:
            if p["name"] in inputs:
                scope[f"inputs.parameters.{p['name']}"] = inputs[p["name"]]
            elif "value" in p or "default" in p:
                scope[f"inputs.parameters.{p['name']}"] = substitute(str(p.get("value", p.get("default"))), glob)
        calls = []
        for group in tmpl.get("steps") or []:
            calls.extend(group)
        calls.extend((tmpl.get("dag") or {}).get("tasks") or [])
        for call in calls:
            args = {p["name"]: substitute(str(p.get("value", "")), scope)
                    for p in (call.get("arguments") or {}).get("parameters") or []}
            visit(call["template"], args, depth + 1)
        container = tmpl.get("container")
        if container and container.get("command") and container["command"][0] in BINARIES:
            line = [substitute(str(x), scope) for x in container["command"] + (container.get("args") or [])]
            runs.append((name, container, line))

    visit(entry, {})
    return runs


def dry_run_line(line, result_dir):
    out, i = [], 0
    while i < len(line):
        a = line[i]
        if a == "--plan":
            i += 1
            continue
        if a == "--result-dir" and i + 1 < len(line):
            out += [a, result_dir]
            i += 2
            continue
        if a.startswith("--result-dir="):
            out.append("--result-dir=" + result_dir)
            i += 1
            continue
        out.append(a)
        i += 1
    return out + ["--dry-run"]


def container_env(container, configmaps):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir()}
    for src in container.get("envFrom") or []:
        if "configMapRef" in src:
            name = src["configMapRef"]["name"]
            if name not in configmaps:
                raise ContractError(f"ConfigMap {name} not found under workflows/")
            env.update({k: str(v) for k, v in (configmaps[name][1].get("data") or {}).items()})
        elif "secretRef" in src:
            env.update(PLACEHOLDER_SECRETS)
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
    env["AWS_ENDPOINT_URL"] = NOWHERE
    return env


# --------------------------------------------------------------------------- checks

def compare(expected, actual):
    problems = []
    if len(expected) != len(actual):
        problems.append(f"expected {len(expected)} JSON line(s), got {len(actual)}")
    for n, (exp, act) in enumerate(zip(expected, actual)):
        for k, v in exp.items():
            a = act.get(k, _MISSING)
            if k == "ftp_path" and isinstance(a, str) and isinstance(v, str):
                a, v = a.lstrip("/"), v.lstrip("/")
            if isinstance(v, list) and isinstance(a, list):
                a, v = sorted(map(str, a)), sorted(map(str, v))
            if a != v:
                problems.append(f"line {n + 1}: {k}: expected {v!r}, got {'(missing)' if a is _MISSING else repr(a)}")
    return problems


def cases(docs):
    sensors = by_kind(docs, "Sensor")
    if not sensors:
        raise ContractError("no Sensor under workflows/")
    for sname, (sfile, sensor) in sorted(sensors.items()):
        deps = sensor["spec"]["dependencies"]
        if len(deps) != 1:
            raise ContractError(f"Sensor {sname}: this test handles one dependency per Sensor")
        dep = deps[0]
        stem = f"{dep['eventSourceName']}.{dep['eventName']}"
        fixtures = sorted(p for p in FIXTURES.glob(stem + "*.json"))
        accepted = []
        for fx in fixtures:
            data = json.loads(fx.read_text())
            if filter_accepts(dep, data):
                accepted.append((fx, data))
        if not accepted:
            raise ContractError(f"Sensor {sname}: no fixture {FIXTURES.relative_to(ROOT)}/{stem}*.json its filters accept")
        for fx, data in accepted:
            yield sname, sensor, dep, fx, data


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    self_test = argv[0] == "--self-test"
    bin_dir = None if self_test else pathlib.Path(argv[0])
    if bin_dir is not None:
        missing = sorted(b for b in BINARIES - {"ftp-watch"} if not (bin_dir / b).is_file())
        if missing:
            print(f"sensor-contract: FAIL: binaries not found in {bin_dir}: {', '.join(missing)} "
                  f"(build them first, e.g. cargo build -p etl-workers --bins)", file=sys.stderr)
            return 1

    docs = load_manifests()
    wftemplates = by_kind(docs, "WorkflowTemplate")
    configmaps = by_kind(docs, "ConfigMap")
    failures = checked = 0
    try:
        all_cases = list(cases(docs))
    except ContractError as e:
        print(f"sensor-contract: FAIL: {e}", file=sys.stderr)
        return 1
    for sname, sensor, dep, fx, data in all_cases:
        label = f"{sname} <- {fx.relative_to(ROOT)}"
        try:
            workflows = trigger_workflows(sensor, {dep["name"]: data})
            expected_file = fx.with_name(fx.name + ".expected.jsonl")
            expected = [json.loads(l) for l in expected_file.read_text().splitlines() if l.strip()]
            for trig, wf in workflows:
                ref = ((wf.get("spec") or {}).get("workflowTemplateRef") or {}).get("name")
                if ref not in wftemplates:
                    raise ContractError(f"trigger {trig}: WorkflowTemplate {ref!r} not found")
                runs = container_runs(wftemplates[ref][1], wf)
                if not runs:
                    raise ContractError(f"WorkflowTemplate {ref}: no container runs a worker binary")
                for tname, container, line in runs:
                    leftover = [a for a in line if "{{" in a]
                    if leftover:
                        raise ContractError(f"{ref}/{tname}: unresolved Argo tags in the command line: {leftover}")
                    with tempfile.TemporaryDirectory(prefix="sensor-contract-") as tmp:
                        cmd = dry_run_line(line, os.path.join(tmp, "result"))
                        shown = " ".join(shlex.quote(a) for a in cmd)
                        if self_test:
                            other = {p["name"]: p.get("value") for p in wf["spec"]["arguments"]["parameters"]
                                     if p["name"] != "event"}
                            print(f"ok   {label} -> {ref}/{tname} {json.dumps(other)}:\n     {shown}")
                            checked += 1
                            continue
                        env = container_env(container, configmaps)
                        exe = bin_dir / cmd[0]
                        proc = subprocess.run([str(exe)] + cmd[1:], env=env, capture_output=True,
                                              text=True, timeout=60, cwd=tmp)
                        problems = []
                        if proc.returncode != 0:
                            problems.append(f"exit code {proc.returncode}")
                        actual = []
                        for l in proc.stdout.splitlines():
                            if not l.strip():
                                continue
                            try:
                                actual.append(json.loads(l))
                            except ValueError:
                                problems.append(f"stdout line is not JSON: {l[:200]!r}")
                        if proc.returncode == 0:
                            problems += compare(expected, actual)
                        checked += 1
                        if problems:
                            failures += 1
                            print(f"FAIL {label} -> {ref}/{tname}\n     {shown}")
                            for p in problems:
                                print(f"     {p}")
                            if proc.stderr.strip():
                                print("     stderr: " + proc.stderr.strip()[-1500:].replace("\n", "\n             "))
                        else:
                            print(f"ok   {label} -> {ref}/{tname} ({len(actual)} line(s))")
        except ContractError as e:
            failures += 1
            print(f"FAIL {label}: {e}")
        except (OSError, subprocess.TimeoutExpired) as e:
            failures += 1
            print(f"FAIL {label}: {e}")
    mode = "mappings resolved" if self_test else "command lines run"
    print(f"sensor-contract: {checked} {mode}, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

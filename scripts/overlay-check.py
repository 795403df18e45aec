#!/usr/bin/env python3
"""Checks of the rendered overlays (`kubectl kustomize` output), one file each.

For every rendered overlay:
- every pod it makes can start once the Secrets docs/deploy.md lists for that
  overlay exist: ConfigMaps, ServiceAccounts, PersistentVolumeClaims,
  EventSources (of Sensors), WorkflowTemplates (of Sensor triggers) are all in
  the render; the Secrets it requires (non-optional references, the volumes
  Argo Events mounts for an EventSource's accessKey/secretKey/authSecret, the
  artifact repository's keys) are exactly the documented ones (SECRETS);
- no template forces log archiving (`archiveLogs` only in an artifact
  repository ConfigMap, whose Secrets then count as required);
- our image everywhere with a non-`latest` tag and imagePullPolicy IfNotPresent;
  every `notify` exit handler runs `etl-notify` from it;
- every retryStrategy is bounded and its expression retries exit 1 and
  infrastructure failures but never exit 2 (evaluated on sample attempts);
- an IRSA overlay references no Secret at all but the optional webhook, and the
  ServiceAccounts of its workflows and EventSources carry an IAM role;
- each NetworkPolicy selects exactly the pods it is meant for (INTENT), with
  the labels Argo puts on pods: Workflow pods `workflows.argoproj.io/workflow`,
  EventSource pods `controller: eventsource-controller` and
  `eventsource-name: <name>`, Deployment pods their template labels.

Usage: scripts/overlay-check.py RENDERED.yaml...   (file name: the overlay path
with / as _, e.g. workflows_overlays_aws-irsa.yaml; scripts/check-manifests.sh
renders them). Exit status: 0 pass, 1 failure, 2 usage error.
"""
import pathlib
import re
import sys

import yaml

IMAGE = "ghcr.io/etlproj/etl"
WEBHOOK_SECRET = "etl-slack-webhook"
# Secrets each overlay requires (docs/deploy.md lists them). Optional ones
# (the webhook) are not required.
SECRETS = {
    "workflows": {"etl-s3-credentials", "etl-ftp-credentials", "ftp-watch-auth"},
    "workflows_overlays_ftp": {"etl-s3-credentials", "etl-ftp-credentials", "ftp-watch-auth"},
    "workflows_overlays_minio": {"etl-s3-credentials"},
    "workflows_overlays_aws-irsa": set(),
    "workflows_overlays_aws-sqs-irsa": set(),
}
# What each NetworkPolicy is for: the pods it selects, and who may connect.
INTENT = {
    "etl-workflow-pods-deny-ingress": {"selects": "workflow pods", "from": None},
    "ftp-watch-ingress": {"selects": "deployment/ftp-watch", "from": "eventsources using service/ftp-watch"},
}
EVENTSOURCE_SECRET_KEYS = ("accessKey", "secretKey", "authSecret", "sessionToken")

# Attempts a retry expression sees, and whether each must be retried.
RETRY_CASES = [
    ({"exitCode": "1", "status": "Failed", "message": "main: Error (exit code 1)"}, True),
    ({"exitCode": "2", "status": "Failed", "message": "main: Error (exit code 2)"}, False),
    ({"exitCode": "2", "status": "Error", "message": "wait: Error (exit code 1)"}, False),
    ({"exitCode": "-1", "status": "Error", "message": "pod deleted"}, True),
    ({"exitCode": "-1", "status": "Error", "message": "Pod was rejected: OutOfcpu"}, True),
    ({"exitCode": "-1", "status": "Failed",
      "message": "The node was low on resource: memory. Threshold quantity: 100Mi"}, True),
    ({"exitCode": "137", "status": "Failed",
      "message": "The node was low on resource: ephemeral-storage."}, True),
    ({"exitCode": "143", "status": "Failed",
      "message": "Pod was terminated in response to imminent node shutdown."}, True),
    ({"exitCode": "-1", "status": "Failed", "message": "Preempted by a higher priority pod"}, True),
    ({"exitCode": "0", "status": "Failed", "message": "pod failed: wait container did not complete successfully"},
     False),
    ({"exitCode": "3", "status": "Failed", "message": "main: Error (exit code 3)"}, False),
]


class Overlay:
    def __init__(self, path):
        self.name = pathlib.Path(path).stem
        self.docs = [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if isinstance(d, dict)]
        self.problems = []

    def of(self, kind):
        return {d["metadata"]["name"]: d for d in self.docs if d.get("kind") == kind}

    def fail(self, text):
        self.problems.append(text)


# --------------------------------------------------------------------------- pods

def workflow_specs(ov):
    for name, d in ov.of("WorkflowTemplate").items():
        yield f"WorkflowTemplate/{name}", name, d["spec"]
    for name, d in ov.of("CronWorkflow").items():
        yield f"CronWorkflow/{name}", name, d["spec"]["workflowSpec"]


def pods(ov):
    """(label, kind of pod, labels, pod spec-like dict) of every pod the overlay makes."""
    out = []
    for name, d in ov.of("Deployment").items():
        t = d["spec"]["template"]
        out.append((f"deployment/{name}", "deployment", dict(t["metadata"].get("labels") or {}), t["spec"]))
    for name, d in ov.of("EventSource").items():
        tmpl = d["spec"].get("template") or {}
        labels = dict((tmpl.get("metadata") or {}).get("labels") or {})
        labels.update({"controller": "eventsource-controller", "eventsource-name": name, "owner-name": name})
        out.append((f"eventsource/{name}", "eventsource", labels, tmpl))
    for name, d in ov.of("Sensor").items():
        tmpl = d["spec"].get("template") or {}
        labels = dict((tmpl.get("metadata") or {}).get("labels") or {})
        labels.update({"controller": "sensor-controller", "sensor-name": name, "owner-name": name})
        out.append((f"sensor/{name}", "sensor", labels, tmpl))
    for label, name, spec in workflow_specs(ov):
        base = dict((spec.get("podMetadata") or {}).get("labels") or {})
        for t in spec.get("templates") or []:
            if not any(k in t for k in ("container", "script", "containerSet")):
                continue
            labels = dict(base)
            labels.update((t.get("metadata") or {}).get("labels") or {})
            labels.update({"workflows.argoproj.io/workflow": f"{name}-x7k2q",
                           "workflows.argoproj.io/completed": "false"})
            out.append((f"{label}/{t['name']}", "workflow", labels, t))
    return out


def selects(selector, labels):
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        k, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(k) not in values:
            return False
        if op == "NotIn" and k in labels and labels[k] in values:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


# --------------------------------------------------------------------------- references

def walk(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk(v, f"{path}.{k}")
        yield path, obj
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, f"{path}[{i}]")


def secret_refs(ov):
    """(where, secret name, optional) of every Secret the overlay's pods use."""
    refs = []
    for d in ov.docs:
        kind, name = d["kind"], d["metadata"]["name"]
        where = f"{kind}/{name}"
        if kind == "ConfigMap":
            if "workflows.argoproj.io/default-artifact-repository" in (d["metadata"].get("annotations") or {}):
                for key, text in (d.get("data") or {}).items():
                    repo = yaml.safe_load(text) or {}
                    for _, node in walk(repo):
                        if isinstance(node, dict) and "name" in node and "key" in node:
                            refs.append((f"{where} artifact repository {key}", node["name"], False))
            continue
        if kind == "EventSource":
            for path, node in walk(d["spec"]):
                for k in EVENTSOURCE_SECRET_KEYS:
                    sel = node.get(k) if isinstance(node, dict) else None
                    if isinstance(sel, dict) and "name" in sel:
                        # Argo Events mounts them as plain secret volumes: `optional` is ignored.
                        refs.append((f"{where}{path}.{k}", sel["name"], False))
        for path, node in walk(d.get("spec") or {}):
            if not isinstance(node, dict):
                continue
            if isinstance(node.get("secretKeyRef"), dict):
                s = node["secretKeyRef"]
                refs.append((f"{where}{path}", s["name"], bool(s.get("optional"))))
            if isinstance(node.get("secretRef"), dict):
                s = node["secretRef"]
                refs.append((f"{where}{path}", s["name"], bool(s.get("optional"))))
            if isinstance(node.get("secret"), dict) and "secretName" in node["secret"]:
                s = node["secret"]
                refs.append((f"{where}{path}", s["secretName"], bool(s.get("optional"))))
            for k in ("accessKeySecret", "secretKeySecret"):
                if isinstance(node.get(k), dict):
                    refs.append((f"{where}{path}.{k}", node[k]["name"], False))
    return refs


def check_references(ov):
    configmaps, sas = ov.of("ConfigMap"), ov.of("ServiceAccount")
    pvcs, sources, wfts = ov.of("PersistentVolumeClaim"), ov.of("EventSource"), ov.of("WorkflowTemplate")
    for d in ov.docs:
        where = f"{d['kind']}/{d['metadata']['name']}"
        for path, node in walk(d.get("spec") or {}):
            if not isinstance(node, dict):
                continue
            for k in ("configMapRef", "configMapKeyRef"):
                ref = node.get(k)
                if isinstance(ref, dict) and not ref.get("optional") and ref["name"] not in configmaps:
                    ov.fail(f"{where}{path}: ConfigMap {ref['name']} is not in this overlay")
            sa = node.get("serviceAccountName")
            if isinstance(sa, str) and sa not in sas:
                ov.fail(f"{where}{path}: ServiceAccount {sa} is not in this overlay")
            claim = (node.get("persistentVolumeClaim") or {}).get("claimName") if isinstance(
                node.get("persistentVolumeClaim"), dict) else None
            if claim and claim not in pvcs:
                ov.fail(f"{where}{path}: PersistentVolumeClaim {claim} is not in this overlay")
            if node.get("archiveLogs") is True or (isinstance(node.get("archiveLocation"), dict)
                                                   and node["archiveLocation"].get("archiveLogs")):
                ov.fail(f"{where}{path}: archiveLogs in a template forces a repository and its Secret; "
                        "set it in the artifact repository ConfigMap of the overlay that has one")
    for label, _, spec in workflow_specs(ov):
        if spec.get("serviceAccountName") is None:
            ov.fail(f"{label}: no serviceAccountName (the namespace's default would run it)")
    for name, s in ov.of("Sensor").items():
        for dep in s["spec"]["dependencies"]:
            src = sources.get(dep["eventSourceName"])
            if src is None:
                ov.fail(f"Sensor/{name}: EventSource {dep['eventSourceName']} is not in this overlay")
            elif not any(dep["eventName"] in (v or {}) for k, v in src["spec"].items()
                         if k not in ("template", "service", "eventBusName", "replicas") and isinstance(v, dict)):
                ov.fail(f"Sensor/{name}: EventSource {dep['eventSourceName']} has no event {dep['eventName']}")
        for trig in s["spec"]["triggers"]:
            res = ((trig["template"].get("k8s") or {}).get("source") or {}).get("resource") or {}
            ref = ((res.get("spec") or {}).get("workflowTemplateRef") or {}).get("name")
            if ref and ref not in wfts:
                ov.fail(f"Sensor/{name}: WorkflowTemplate {ref} is not in this overlay")

    refs = secret_refs(ov)
    required = {name for _, name, optional in refs if not optional}
    expected = SECRETS.get(ov.name)
    if expected is None:
        ov.fail(f"no SECRETS entry for overlay {ov.name}: add the Secrets it needs (and to docs/deploy.md)")
    elif required != expected:
        ov.fail(f"requires Secrets {sorted(required)}, docs/deploy.md lists {sorted(expected)}")
    if "irsa" in ov.name:
        for where, name, optional in refs:
            if name != WEBHOOK_SECRET or not optional:
                ov.fail(f"IRSA overlay references Secret {name} ({where})")
        for label, _, spec in workflow_specs(ov):
            sa = sas.get(spec.get("serviceAccountName"))
            if sa is not None and "eks.amazonaws.com/role-arn" not in (sa["metadata"].get("annotations") or {}):
                ov.fail(f"{label}: ServiceAccount {sa['metadata']['name']} has no eks.amazonaws.com/role-arn")
        for name, d in sources.items():
            sa = sas.get((d["spec"].get("template") or {}).get("serviceAccountName"))
            if sa is None or "eks.amazonaws.com/role-arn" not in (sa["metadata"].get("annotations") or {}):
                ov.fail(f"EventSource/{name}: needs a serviceAccountName with eks.amazonaws.com/role-arn")
    return refs


# --------------------------------------------------------------------------- images, notify, retries

def containers(tmpl):
    for k in ("container", "script"):
        if isinstance(tmpl.get(k), dict):
            yield tmpl[k]
    for c in tmpl.get("containers") or []:
        yield c


def check_images(ov):
    for label, kind, _, spec in pods(ov):
        for c in containers(spec):
            image = c.get("image", "")
            if not image.startswith(IMAGE):
                continue
            tag = image[len(IMAGE):].lstrip(":")
            if tag in ("", "latest"):
                ov.fail(f"{label}: image {image}: a locally built image needs a tag of its own")
            if c.get("imagePullPolicy") != "IfNotPresent":
                ov.fail(f"{label}: image {image} without imagePullPolicy: IfNotPresent")
    for label, _, spec in workflow_specs(ov):
        exit_handler = spec.get("onExit")
        if not exit_handler:
            continue
        tmpl = next((t for t in spec["templates"] if t["name"] == exit_handler), None)
        c = (tmpl or {}).get("container")
        if not c or not c.get("image", "").startswith(IMAGE) or c.get("command") != ["etl-notify"]:
            ov.fail(f"{label}: exit handler {exit_handler} must be a container running etl-notify from {IMAGE}")
            continue
        hook = next((e for e in c.get("env") or [] if e["name"] == "WEBHOOK_URL"), None)
        ref = ((hook or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        if ref != {"name": WEBHOOK_SECRET, "key": "url", "optional": True}:
            ov.fail(f"{label}/{exit_handler}: WEBHOOK_URL must come from optional Secret {WEBHOOK_SECRET} key url")


def eval_retry(expression, attempt):
    """The subset of expr-lang our retry expressions use, evaluated in Python."""
    text = expression
    text = re.sub(r"asInt\(lastRetry\.exitCode\)", lambda _: str(int(attempt["exitCode"])), text)
    text = re.sub(r"lastRetry\.(status|message)\s+matches\s+(\"[^\"]*\"|'[^']*')",
                  lambda m: str(bool(re.search(m.group(2)[1:-1], attempt[m.group(1)]))), text)
    text = re.sub(r"lastRetry\.(status|message|exitCode)", lambda m: repr(attempt[m.group(1)]), text)
    text = text.replace("&&", " and ").replace("||", " or ").replace("!=", " != ")
    text = re.sub(r"!(?!=)", " not ", text)
    if re.search(r"[A-Za-z_]\w*\(|lastRetry|\?|`", text):
        raise ValueError(f"expression beyond this check's subset: {expression!r}")
    return bool(eval(text, {"__builtins__": {}}, {"True": True, "False": False}))  # noqa: S307


def check_retries(ov):
    for label, _, spec in workflow_specs(ov):
        for t in spec.get("templates") or []:
            rs = t.get("retryStrategy")
            if rs is None:
                continue
            where = f"{label}/{t['name']}"
            limit = rs.get("limit")
            if limit is None or int(str(limit)) > 10:
                ov.fail(f"{where}: retryStrategy.limit must be set and small (got {limit!r})")
            if not (rs.get("backoff") or {}).get("maxDuration"):
                ov.fail(f"{where}: retryStrategy.backoff.maxDuration must bound the retries")
            if rs.get("retryPolicy", "Always") != "Always":
                ov.fail(f"{where}: retryPolicy {rs['retryPolicy']} would not retry both Failed and Error nodes")
            expression = rs.get("expression")
            if not expression:
                ov.fail(f"{where}: no retry expression: exit 2 (bad input) would be retried")
                continue
            for attempt, want in RETRY_CASES:
                try:
                    got = eval_retry(expression, attempt)
                except (ValueError, SyntaxError) as e:
                    ov.fail(f"{where}: {e}")
                    break
                if got != want:
                    ov.fail(f"{where}: attempt {attempt}: {'retried' if got else 'not retried'}, "
                            f"expected {'retried' if want else 'not retried'}")


# --------------------------------------------------------------------------- network policies

def check_network_policies(ov):
    all_pods = pods(ov)
    services = ov.of("Service")
    for name, np in ov.of("NetworkPolicy").items():
        intent = INTENT.get(name)
        if intent is None:
            ov.fail(f"NetworkPolicy/{name}: not in INTENT (say which pods it is for)")
            continue
        selected = {label for label, _, labels, _ in all_pods if selects(np["spec"]["podSelector"], labels)}
        if intent["selects"] == "workflow pods":
            meant = {label for label, kind, _, _ in all_pods if kind == "workflow"}
        else:
            meant = {label for label, _, _, _ in all_pods if label == intent["selects"]}
        if not meant:
            ov.fail(f"NetworkPolicy/{name}: no {intent['selects']} in this overlay")
        if selected != meant:
            ov.fail(f"NetworkPolicy/{name}: selects {sorted(selected)}, meant {sorted(meant)}")
        rules = np["spec"].get("ingress") or []
        if "Ingress" not in (np["spec"].get("policyTypes") or []):
            ov.fail(f"NetworkPolicy/{name}: policyTypes lacks Ingress")
        if intent["from"] is None:
            if rules:
                ov.fail(f"NetworkPolicy/{name}: must admit no inbound traffic, has {len(rules)} rule(s)")
            continue
        svc_name = intent["from"].rsplit("/", 1)[1]
        svc = services.get(svc_name)
        if svc is None:
            ov.fail(f"NetworkPolicy/{name}: Service {svc_name} not in this overlay")
            continue
        clients = set()
        for src_name, src in ov.of("EventSource").items():
            for ev in (src["spec"].get("generic") or {}).values():
                if ev.get("url", "").split(":")[0] in (svc_name, f"{svc_name}.{src['metadata'].get('namespace')}"):
                    clients.add(f"eventsource/{src_name}")
        if not clients:
            ov.fail(f"NetworkPolicy/{name}: no EventSource uses Service {svc_name}")
        for i, rule in enumerate(rules):
            peers = rule.get("from") or []
            if not peers:
                ov.fail(f"NetworkPolicy/{name}: ingress rule {i} admits every source")
            admitted = set()
            for peer in peers:
                if "ipBlock" in peer or "namespaceSelector" in peer:
                    ov.fail(f"NetworkPolicy/{name}: rule {i} admits beyond the pods of this namespace")
                admitted |= {label for label, _, labels, _ in all_pods if selects(peer.get("podSelector"), labels)}
            if admitted != clients:
                ov.fail(f"NetworkPolicy/{name}: rule {i} admits {sorted(admitted)}, meant {sorted(clients)}")
            ports = {p.get("port") for p in rule.get("ports") or []}
            target = {p.get("targetPort") for p in svc["spec"]["ports"]}
            dep = ov.of("Deployment").get(svc_name)
            numbers = {cp["containerPort"] for c in (dep or {}).get("spec", {}).get("template", {}).get(
                "spec", {}).get("containers", []) for cp in c.get("ports") or [] if cp.get("name") in target}
            if not ports or not ports <= numbers | target:
                ov.fail(f"NetworkPolicy/{name}: rule {i} ports {sorted(map(str, ports))} are not the "
                        f"Service's target ports {sorted(map(str, numbers | target))}")
    return all_pods


# --------------------------------------------------------------------------- gRPC token

def check_grpc_token(ov):
    """Each generic EventSource with an authSecret calls a Deployment that reads the same
    Secret key as its token file (FTP_WATCH_AUTH_TOKEN_FILE), and none calls without one."""
    services = ov.of("Service")
    deployments = ov.of("Deployment")
    for es_name, es in ov.of("EventSource").items():
        for source_name, source in (es["spec"].get("generic") or {}).items():
            where = f"EventSource/{es_name}/{source_name}"
            auth = source.get("authSecret")
            if not auth:
                ov.fail(f"{where}: no authSecret: ftp-watch would accept any caller")
                continue
            svc = services.get(source["url"].split(":")[0])
            if svc is None:
                ov.fail(f"{where}: Service {source['url']} not in this overlay")
                continue
            served = [d for d in deployments.values()
                      if selects({"matchLabels": svc["spec"]["selector"]},
                                 d["spec"]["template"]["metadata"].get("labels") or {})]
            if not served:
                ov.fail(f"{where}: no Deployment behind Service {svc['metadata']['name']}")
            for d in served:
                spec = d["spec"]["template"]["spec"]
                if not token_file_is_secret(spec, auth["name"], auth["key"]):
                    ov.fail(f"{where}: Deployment/{d['metadata']['name']} does not read its "
                            f"token file from Secret {auth['name']} key {auth['key']}")


def token_file_is_secret(spec, secret, key):
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for c in spec.get("containers") or []:
        env = {e["name"]: e.get("value") for e in c.get("env") or []}
        path = env.get("FTP_WATCH_AUTH_TOKEN_FILE")
        if not path:
            continue
        for m in c.get("volumeMounts") or []:
            vol = volumes.get(m["name"], {}).get("secret")
            if not vol or vol.get("secretName") != secret:
                continue
            items = {i["path"]: i["key"] for i in vol.get("items") or []}
            rel = path[len(m["mountPath"]):].lstrip("/") if path.startswith(m["mountPath"] + "/") else None
            if rel is not None and items.get(rel, rel if not items else None) == key:
                return True
    return False


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    failed = 0
    for path in argv:
        ov = Overlay(path)
        refs = check_references(ov)
        check_images(ov)
        check_retries(ov)
        check_network_policies(ov)
        check_grpc_token(ov)
        required = sorted({n for _, n, o in refs if not o})
        if ov.problems:
            failed += 1
            for p in ov.problems:
                print(f"FAIL {ov.name}: {p}")
        else:
            nps = sorted(ov.of("NetworkPolicy"))
            print(f"ok   {ov.name}: {len(ov.docs)} resources, Secrets required {required or 'none'}, "
                  f"NetworkPolicies {nps or 'none'}")
    print(f"overlay-check: {len(argv)} overlays, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

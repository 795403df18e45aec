#!/bin/sh
# Checks everything under workflows/: strict Argo/Kubernetes schema validation
# of each YAML file and of the kustomize build of workflows/ and of every
# overlay (workflows/overlays/*), the rendered overlays themselves
# (scripts/overlay-check.py: pods that can start, IRSA without Secrets,
# NetworkPolicy selectors, retry expressions), then the Sensor -> command line
# mapping (scripts/sensor-contract.py --self-test) and the command lines of the
# CronWorkflows and hand-submitted WorkflowTemplates
# (scripts/template-contract.py --self-test). Give a binary folder as $1 to
# also run the binaries with those command lines and merge every podSpecPatch
# `etl --plan` can suggest (scripts/podspecpatch-check.py).
#
# Needs python3 with PyYAML and jsonschema. CI installs them with:
#   python3 -m pip install --quiet pyyaml jsonschema
set -eu
cd "$(dirname "$0")/.."
validator="${VALIDATE_MANIFESTS:-../shared/tools/validate-manifests}"
[ -x "$validator" ] || validator=/work/shared/tools/validate-manifests

# A fresh machine has python3 but maybe not these two packages.
python3 -c 'import yaml, jsonschema' 2>/dev/null || python3 -m pip install --quiet pyyaml jsonschema

python3 "$validator" workflows/

built="$(mktemp -d)"
trap 'rm -rf "$built"' EXIT
render=""
if command -v kustomize >/dev/null 2>&1; then
  render="kustomize build"
elif command -v kubectl >/dev/null 2>&1; then
  render="kubectl kustomize"
fi
status=0
if [ -n "$render" ]; then
  for dir in workflows workflows/overlays/*/; do
    dir="${dir%/}"
    out="$built/$(echo "$dir" | tr / _).yaml"
    $render "$dir" > "$out"
    echo "rendered $dir: $(grep -c '^kind:' "$out") resources"
    python3 "$validator" "$out"
  done
  python3 scripts/overlay-check.py "$built"/*.yaml || status=1
else
  echo "kustomize/kubectl not found: kustomize builds and overlays not checked"
fi

if [ $# -gt 0 ]; then
  bin_dir="$(cd "$1" && pwd)"
  python3 scripts/sensor-contract.py "$bin_dir" || status=1
  python3 scripts/template-contract.py "$bin_dir" || status=1
  python3 scripts/podspecpatch-check.py "$bin_dir" || status=1
else
  python3 scripts/sensor-contract.py --self-test || status=1
  python3 scripts/template-contract.py --self-test || status=1
fi
exit $status

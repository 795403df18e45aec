#!/bin/sh
# Checks everything under workflows/: strict Argo/Kubernetes schema validation
# of each YAML file and of the kustomize build (when kubectl or kustomize is
# available), then the Sensor -> command line mapping (scripts/sensor-contract.py
# --self-test) and the command lines of the CronWorkflows and hand-submitted
# WorkflowTemplates (scripts/template-contract.py --self-test); give a binary
# folder as $1 to also run the binaries with those command lines.
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
if command -v kustomize >/dev/null 2>&1; then
  kustomize build workflows/ > "$built/all.yaml"
elif command -v kubectl >/dev/null 2>&1; then
  kubectl kustomize workflows/ > "$built/all.yaml"
fi
if [ -s "$built/all.yaml" ]; then
  python3 "$validator" "$built/all.yaml"
else
  echo "kustomize/kubectl not found: kustomize build not checked"
fi

if [ $# -gt 0 ]; then
  bin_dir="$(cd "$1" && pwd)"
  status=0
  python3 scripts/sensor-contract.py "$bin_dir" || status=1
  python3 scripts/template-contract.py "$bin_dir" || status=1
  exit $status
else
  status=0
  python3 scripts/sensor-contract.py --self-test || status=1
  python3 scripts/template-contract.py --self-test || status=1
  exit $status
fi

#!/usr/bin/env bash
# Lint of the Kubernetes manifests: `kubectl kustomize` builds the base and every overlay of
# deploy/kubernetes, and kubernetes-validate (PyPI) checks every resource strictly against the
# Kubernetes schemas. No cluster is needed (nor contacted).
set -euo pipefail
BIN=${BIN:-.venv/bin}
root=$(cd "$(dirname "$0")/.." && pwd)
command -v kubectl >/dev/null || { echo "kubectl not found: it builds the kustomizations (kustomize is built in)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for dir in "$root"/deploy/kubernetes/base "$root"/deploy/kubernetes/overlays/*; do
  name=$(basename "$dir")
  kubectl kustomize "$dir" >"$work/$name.yaml"
  "$root/$BIN/kubernetes-validate" --strict --quiet "$work/$name.yaml"
  echo "deploy/kubernetes/${dir#"$root"/deploy/kubernetes/}: $(grep -c '^kind:' "$work/$name.yaml") resources valid"
done

#!/usr/bin/env bash
# `infra/verify/through-port-forward.sh <stack>`: `npm run verify` against a stack just deployed, from outside the
# cluster (the workflow's runner, an operator's laptop with the cluster's kube context): the stack's outputs, then
# `kubectl port-forward` to the in-cluster Services they name (Synapse, the bridge), then the checks through them.
# The outputs file holds secrets: it lives in a private temporary folder, removed on exit with the port forwards.
set -euo pipefail
stack="${1:?usage: through-port-forward.sh <stack>}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
outputs="$work/outputs.json"
pulumi stack output --stack "$stack" --json --show-secrets >"$outputs"
namespace="$(jq -r .namespace "$outputs")"

# forward <output> <local port>: port-forwards the Service an in-cluster URL output names (http://<service>:<port>),
# and waits until the local port answers.
forward() {
  local url service port
  url="$(jq -r ".$1 // empty" "$outputs")"
  [[ -n "$url" ]] || return 1
  service="$(sed -E 's#^https?://([^:/]+).*#\1#' <<<"$url")"
  port="$(sed -E 's#^https?://[^:/]+:([0-9]+).*#\1#' <<<"$url")"
  kubectl --namespace "$namespace" port-forward "service/$service" "$2:$port" >"$work/$1.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 60); do
    if curl --silent --output /dev/null "http://127.0.0.1:$2/"; then return 0; fi
    sleep 1
  done
  echo "port-forward to service/$service:$port did not answer in 60 s:" >&2
  cat "$work/$1.log" >&2
  exit 1
}

args=(--outputs "$outputs")
forward homeserverUrl 18008 && args+=(--homeserver-url http://127.0.0.1:18008)
if forward bridgeUrl 18080; then args+=(--bridge-url http://127.0.0.1:18080); fi
npm run --silent verify -- "${args[@]}"

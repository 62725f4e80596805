#!/usr/bin/env bash
# Side-by-side catch-up benchmark: signet-controller against the upstream Bitnami controller
# (v0.40.0, installed by scripts/bootstrap), both as child processes against the real API server.
#
#   scripts/bench-controller.sh [N=5000]
#
# For each controller, a fresh API server (one per bench process) gets N SealedSecrets of 3 items
# each and a pre-created RSA-4096 key Secret labelled sealedsecrets.bitnami.com/sealed-secrets-key;
# the controller is started and timed until every object has its Secret and Synced=True; then 50
# new objects measure "created -> Secret" latency; peak RSS is the controller process's VmHWM.
# See controller/benches/catch_up.rs for the details (credentials for Bitnami's in-cluster config).
#
# Environment:
#   SIGNET_BENCH_BITNAMI_QPS   Bitnami's --kubeclient-qps (default -1 = no client-side rate limit,
#                              like Signet's kube-rs client; Bitnami's own default is 5, burst 10)
#   BITNAMI_CONTROLLER         path of the Bitnami controller binary
#   BENCH_OUT                  directory for the raw logs (default: a temp dir)
#   SIGNET_BENCH_RESTART=0     skip the restart catch-up (each controller started again with every
#                              Secret current, timed until it has looked at every object)
set -euo pipefail

N="${1:-5000}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BITNAMI="${BITNAMI_CONTROLLER:-${HOME}/.cache/signet/bin/sealed-secrets-controller}"
OUT="${BENCH_OUT:-$(mktemp -d -t signet-bench-controller.XXXXXX)}"
mkdir -p "$OUT"
cd "$ROOT"

[[ -x "$BITNAMI" ]] || {
  echo "bench-controller: the Bitnami controller is not at $BITNAMI (run scripts/bootstrap)" >&2
  exit 1
}

echo "building the controller as the container image ships it (scripts/build-image)..." >&2
scripts/build-image --binary-only "$OUT/image"
SIGNET_BIN="$OUT/image/signet-controller"
BENCH_BIN="$(cargo bench -p signet-controller --bench catch_up --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "catch_up" and m.get("executable"):
        print(m["executable"])')"
[[ -x "$BENCH_BIN" ]] || { echo "bench-controller: no catch_up bench binary" >&2; exit 1; }

run() { # name, env...
  local name="$1"
  shift
  echo "running $name with N=$N (log: $OUT/$name.log)..." >&2
  env SIGNET_BENCH_N="$N" "$@" "$BENCH_BIN" --bench 2>&1 | tee "$OUT/$name.log" >&2
  grep '^RESULT ' "$OUT/$name.log" | tail -1
}

signet_result="$(run signet SIGNET_BENCH_CONTROLLER_BIN="$SIGNET_BIN")"
bitnami_result="$(run bitnami SIGNET_BENCH_BITNAMI_BIN="$BITNAMI" \
  SIGNET_BENCH_BITNAMI_QPS="${SIGNET_BENCH_BITNAMI_QPS:--1}")"

python3 - "$signet_result" "$bitnami_result" "${SIGNET_BENCH_BITNAMI_QPS:--1}" <<'EOF'
import sys
def parse(line):
    return dict(kv.split("=", 1) for kv in line.split()[1:])
s, b, qps = parse(sys.argv[1]), parse(sys.argv[2]), sys.argv[3]
n = s["n"]
rows = [
    ("all Secrets written (s)", "secrets_s", "{:.2f}"),
    ("all Synced (s)", "synced_s", "{:.2f}"),
    ("controller CPU, catch-up (s)", "cpu_s", "{:.1f}"),
    ("control-plane CPU, catch-up (s)", "control_plane_cpu_s", "{:.1f}"),
    ("API requests, catch-up", "requests", "{:.0f}"),
    ("new object p50 (ms)", "p50_ms", "{:.1f}"),
    ("new object p99 (ms)", "p99_ms", "{:.1f}"),
    ("peak RSS (MiB)", "peak_rss_kib", None),
    ("restart: all looked at (s)", "restart_s", "{:.2f}"),
    ("restart: controller CPU (s)", "restart_cpu_s", "{:.1f}"),
    ("restart: control-plane CPU (s)", "restart_control_plane_cpu_s", "{:.1f}"),
    ("restart: API requests", "restart_requests", "{:.0f}"),
]
rows = [r for r in rows if r[1] in s and r[1] in b]
print(f"catch-up of {n} SealedSecrets (3 items each), RSA-4096 key; Bitnami --kubeclient-qps={qps}")
print(f"{'':30}{'signet':>12}{'bitnami':>12}")
for label, key, fmt in rows:
    sv, bv = float(s[key]), float(b[key])
    if fmt is None:
        sv, bv, fmt = sv / 1024, bv / 1024, "{:.1f}"
    print(f"{label:30}{fmt.format(sv):>12}{fmt.format(bv):>12}")
speed = float(b["synced_s"]) / float(s["synced_s"])
memory = float(s["peak_rss_kib"]) / float(b["peak_rss_kib"])
print(f"time to all Synced, Bitnami/Signet: {speed:.2f}x  (target >= 5x)")
print(f"peak RSS, Signet/Bitnami:           {memory:.2f}  (target <= 0.33)")
if "restart_s" in s and "restart_s" in b:
    restart = float(b["restart_s"]) / float(s["restart_s"])
    print(f"restart catch-up, Bitnami/Signet:   {restart:.2f}x")
EOF
echo "raw logs: $OUT" >&2

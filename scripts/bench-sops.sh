#!/usr/bin/env bash
# Whole-process comparison of `signet` and upstream sops on the same inputs, in the same run:
#   (a) a 30-key Kubernetes Secret manifest, (b) a ~5 MB YAML with ~50k values;
# encrypt and decrypt each, and print signet's speed-up (sops time / signet time).
# Needs: hyperfine (Debian), sops (scripts/bootstrap sops), a release build of signet.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/bootstrap sops hyperfine age)"
runs=${RUNS:-10}
cargo build -q --release -p signet
target=${CARGO_TARGET_DIR:-target}
signet=$(realpath "$target/release/signet")
sops=$(command -v sops)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
age-keygen -o "$work/key.txt" 2>/dev/null
recipient=$(age-keygen -y "$work/key.txt")
export SOPS_AGE_KEY_FILE=$work/key.txt SOPS_DISABLE_VERSION_CHECK=1

python3 - "$work" <<'PY'
import sys, random, string
work = sys.argv[1]
rnd = random.Random(7)
def word(n): return ''.join(rnd.choice(string.ascii_letters + string.digits) for _ in range(n))
with open(f"{work}/small.yaml", "w") as f:
    f.write("apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\n  namespace: prod\ntype: Opaque\nstringData:\n")
    for i in range(30):
        f.write(f"  KEY_{i}: {word(24)}\n")
with open(f"{work}/large.yaml", "w") as f:
    n = 0
    svc = 0
    while n < 50000:
        f.write(f"service{svc}:\n  # settings of service {svc}\n  name: svc-{svc}\n  replicas: {rnd.randint(1, 9)}\n  enabled: true\n  env:\n")
        n += 3
        for j in range(20):
            f.write(f"    VAR_{j}: {word(112)}\n")
            n += 1
        f.write("  ports:\n")
        for j in range(4):
            f.write(f"    - {8000 + j}\n")
            n += 1
        svc += 1
PY
ls -l "$work"/*.yaml >&2

results=$work/results.md
: > "$results"
for f in small large; do
  in=$work/$f.yaml
  "$sops" -e --age "$recipient" "$in" > "$work/$f.sops.yaml"
  "$signet" encrypt --age "$recipient" "$in" > "$work/$f.signet.yaml"
  hyperfine -N --warmup 2 --runs "$runs" --export-json "$work/$f-enc.json" \
    -n "sops encrypt $f" "$sops -e --age $recipient $in" \
    -n "signet encrypt $f" "$signet encrypt --age $recipient $in" >&2
  hyperfine -N --warmup 2 --runs "$runs" --export-json "$work/$f-dec.json" \
    -n "sops decrypt $f" "$sops -d $work/$f.sops.yaml" \
    -n "signet decrypt $f" "$signet decrypt $work/$f.sops.yaml" >&2
  for op in enc dec; do
    python3 - "$work/$f-$op.json" "$f" "$op" >> "$results" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
sops, signet = r[0]["mean"], r[1]["mean"]
print(f"| {sys.argv[2]} | {'encrypt' if sys.argv[3]=='enc' else 'decrypt'} | {sops*1000:.1f} ms | {signet*1000:.1f} ms | {sops/signet:.1f}x |")
PY
  done
done
echo "| input | operation | sops | signet | signet speed-up |"
echo "|---|---|---|---|---|"
cat "$results"

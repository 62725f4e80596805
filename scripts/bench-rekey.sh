#!/usr/bin/env bash
# Whole-process comparison of `signet rekey DIR` with a shell loop of upstream `sops updatekeys -y`
# over the same files, using hyperfine.
#
#   scripts/bench-rekey.sh [N]      (default 1000 sops-encrypted YAML Secrets)
#
# Setup: N Secret manifests encrypted by signet to an age recipient A (values only, like --k8s), then
# the .sops.yaml rule changes from A to B. Each measured run starts from a fresh copy of the stale
# tree (hyperfine --prepare) and re-wraps every file's data key for B with identity A. Both results
# are checked (upstream sops opens a file with B alone; `signet rekey --check` passes). Prints
# hyperfine's table and the sops/signet ratio of mean times. Needs hyperfine and the peers from
# scripts/bootstrap (SIGNET_PEER_BIN, default /root/.cache/signet/bin). RUNS (default 2) sets the
# number of measured runs; the sops loop takes about a minute per run at N=1000.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
RUNS=${RUNS:-2}
PEERS=${SIGNET_PEER_BIN:-/root/.cache/signet/bin}
SOPS=$PEERS/sops
command -v hyperfine >/dev/null || { echo "bench-rekey: hyperfine not found (apt-get install hyperfine)" >&2; exit 1; }
[ -x "$SOPS" ] || { echo "bench-rekey: sops not found at $SOPS" >&2; exit 1; }
export SOPS_DISABLE_VERSION_CHECK=1

cargo build --release --quiet -p signet
TARGET=${CARGO_TARGET_DIR:-target}
SIGNET=$(realpath "$TARGET/release/signet")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

"$SIGNET" keygen -o a.agekey 2>/dev/null
"$SIGNET" keygen -o b.agekey 2>/dev/null
A=$(sed -n 's/^# public key: //p' a.agekey)
B=$(sed -n 's/^# public key: //p' b.agekey)

mkdir -p stale/secrets
for i in $(seq 1 "$N"); do
  printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-%05d\n  namespace: prod\ntype: Opaque\nstringData:\n  username: user-%d\n  password: password-%06d-correct-horse-battery\n  url: postgres://db-%d.prod.svc:5432/app\n' \
    "$i" "$i" "$i" "$i" > "stale/secrets/app-$(printf %05d "$i").yaml"
done
# Encrypt (two processes at a time; this is setup, not measured).
find stale/secrets -name '*.yaml' -print0 |
  xargs -0 -P 2 -n 50 sh -c 'age=$1; shift; for f; do "$0" encrypt --k8s --age "$age" -i "$f" || exit 1; done' "$SIGNET" "$A"
# The rule changes: A leaves, B arrives. Every file is now stale.
printf 'creation_rules:\n  - path_regex: ^secrets/\n    age: %s\n' "$B" > stale/.sops.yaml
export SOPS_AGE_KEY_FILE=$WORK/a.agekey
(cd stale && "$SIGNET" rekey --check >/dev/null 2>&1; [ $? -eq 211 ]) || { echo "bench-rekey: setup is not stale" >&2; exit 1; }

cat > sops-loop.sh <<SH
#!/bin/sh
cd repo && for f in secrets/*.yaml; do "$SOPS" updatekeys -y "\$f" >/dev/null 2>&1 || exit 1; done
SH
chmod +x sops-loop.sh
PREPARE='rm -rf repo && cp -a stale repo'

hyperfine --style basic --runs "$RUNS" --export-json rekey.json --prepare "$PREPARE" \
  -n "signet rekey ($N files)" "cd repo && $SIGNET rekey . > /dev/null" \
  -n "sops updatekeys loop ($N files)" "./sops-loop.sh" >&2

# Check both results: B alone opens a file, and nothing is stale (the last run was sops').
check() { # who
  (cd repo && SOPS_AGE_KEY_FILE=$WORK/b.agekey "$SOPS" -d secrets/app-00001.yaml | grep -q 'password-000001') ||
    { echo "bench-rekey: $1 result does not open with B" >&2; exit 1; }
  (cd repo && "$SIGNET" rekey --check >/dev/null) || { echo "bench-rekey: $1 left stale files" >&2; exit 1; }
}
check sops
rm -rf repo && cp -a stale repo && (cd repo && "$SIGNET" rekey . >/dev/null)
check signet

python3 - <<'PY'
import json
r = json.load(open("rekey.json"))["results"]
s, k = r[0]["mean"], r[1]["mean"]
print("| case | signet rekey | sops updatekeys loop | sops/signet |")
print("|---|---|---|---|")
print(f"| {r[0]['command'].split('(')[1].rstrip(')')} | {s*1000:.0f} ms | {k*1000:.0f} ms | {k/s:.1f}x |")
PY

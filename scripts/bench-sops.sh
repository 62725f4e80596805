#!/usr/bin/env bash
# Whole-process comparison of `signet` with upstream sops 3.13.2 and rops (the other Rust sops), in
# one run, on the same inputs: (a) a 30-key Kubernetes Secret manifest, (b) a ~5 MB YAML with ~50k
# values, both encrypted by sops 3.13.2 to one age key. For decrypt, encrypt, rotate and updatekeys
# it prints the median wall time (hyperfine) and the peak RSS (a separate `/usr/bin/time -f %M`
# pass, median of RSS_RUNS) of each tool, and signet's speed-up over each.
#
# A script, not a test: it never runs in CI. It installs its peers idempotently into
# $SIGNET_BENCH_CACHE (default ~/.cache/signet/bench), not into the clone:
#   sops 3.13.2  go install github.com/getsops/sops/v3/cmd/sops@v3.13.2  -> bench/bin/sops
#   rops 0.1.7   cargo install --locked rops-cli                           -> bench/rops/bin/rops
# Needs: go, cargo, hyperfine and age (scripts/bootstrap), GNU time (/usr/bin/time).
#
#   scripts/bench-sops.sh                 # RUNS=10 RSS_RUNS=3
#   RUNS=5 scripts/bench-sops.sh
#
# rops has no rotate or updatekeys command (its `keys add/remove` re-wraps in place but takes keys
# on the command line, not from a creation rule): those cells say "n/a".
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/bootstrap hyperfine age)"
runs=${RUNS:-10}
rss_runs=${RSS_RUNS:-3}
bench=${SIGNET_BENCH_CACHE:-$HOME/.cache/signet/bench}
SOPS_BENCH_VERSION=3.13.2
ROPS_VERSION=0.1.7
mkdir -p "$bench/bin"

if ! "$bench/bin/sops" --version --disable-version-check 2>/dev/null | grep -q "sops $SOPS_BENCH_VERSION"; then
  echo "bench: go install sops v$SOPS_BENCH_VERSION" >&2
  GOBIN=$bench/bin GOTOOLCHAIN=local GOFLAGS=-mod=mod \
    go install "github.com/getsops/sops/v3/cmd/sops@v$SOPS_BENCH_VERSION" >&2
fi
# rops has no --version: ask cargo what it installed there.
if ! cargo install --list --root "$bench/rops" 2>/dev/null | grep -q "^rops-cli v$ROPS_VERSION:"; then
  echo "bench: cargo install rops-cli $ROPS_VERSION" >&2
  CARGO_TARGET_DIR=$bench/rops-target cargo install --locked rops-cli --version "$ROPS_VERSION" \
    --root "$bench/rops" >&2
fi
sops=$bench/bin/sops
rops=$bench/rops/bin/rops

cargo build -q --release -p signet
target=${CARGO_TARGET_DIR:-target}
signet=$(realpath "$target/release/signet")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
age-keygen -o key.txt 2>/dev/null
age-keygen -o key2.txt 2>/dev/null
recipient=$(age-keygen -y key.txt)
recipient2=$(age-keygen -y key2.txt)
cat key.txt key2.txt > keys.txt
export SOPS_AGE_KEY_FILE=$work/keys.txt SOPS_DISABLE_VERSION_CHECK=1
ROPS_AGE=$(grep '^AGE-SECRET-KEY' key.txt)
export ROPS_AGE
# updatekeys: the rule adds a second recipient to files encrypted to the first.
cat > .sops.yaml <<EOF
creation_rules:
  - path_regex: .*
    age: $recipient,$recipient2
EOF

python3 - <<'PY'
import random, string
rnd = random.Random(7)
def word(n): return ''.join(rnd.choice(string.ascii_letters + string.digits) for _ in range(n))
with open("small.yaml", "w") as f:
    f.write("apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\n  namespace: prod\ntype: Opaque\nstringData:\n")
    for i in range(30):
        f.write(f"  KEY_{i}: {word(24)}\n")
with open("large.yaml", "w") as f:
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

# One-line runners, so that hyperfine -N (no shell) and the RSS pass run the very same thing;
# rops reads stdin.
runner() { # name, command...
  printf '#!/bin/sh\nexec %s\n' "$2" > "$1"
  chmod +x "$1"
}

results=$work/results.tsv
: > "$results"
measure() { # input op tool command
  local id=$1-$2-$3 cmd=$4 prep=${5:-true}
  runner "run-$id" "$cmd"
  runner "prep-$id" "$prep"
  "./prep-$id"
  if ! "./run-$id" > /dev/null 2> "err-$id"; then
    echo "bench: $id failed: $(head -c 300 "err-$id")" >&2
    printf '%s\t%s\t%s\tfail\tfail\n' "$1" "$2" "$3" >> "$results"
    return
  fi
  hyperfine -N --warmup 2 --runs "$runs" --prepare "./prep-$id" --export-json "$id.json" \
    -n "$3 $2 $1" "./run-$id" >&2
  local rss=()
  for _ in $(seq "$rss_runs"); do
    "./prep-$id"
    /usr/bin/time -f %M -o "rss-$id" "./run-$id" > /dev/null 2>&1
    rss+=("$(cat "rss-$id")")
  done
  local med_rss
  med_rss=$(printf '%s\n' "${rss[@]}" | sort -n | sed -n "$(((rss_runs + 1) / 2))p")
  local med_time
  med_time=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$id.json")
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$med_time" "$med_rss" >> "$results"
}

for f in small large; do
  "$sops" -e --age "$recipient" "$f.yaml" > "$f.sops.yaml"
  cp "$f.sops.yaml" "$f.upd.orig.yaml"
  measure "$f" decrypt sops "$sops -d $f.sops.yaml"
  measure "$f" decrypt rops "$rops decrypt --format yaml < $f.sops.yaml"
  measure "$f" decrypt signet "$signet decrypt $f.sops.yaml"
  measure "$f" encrypt sops "$sops -e --age $recipient $f.yaml"
  measure "$f" encrypt rops "$rops encrypt --age $recipient --format yaml < $f.yaml"
  measure "$f" encrypt signet "$signet encrypt --age $recipient $f.yaml"
  measure "$f" rotate sops "$sops rotate $f.sops.yaml"
  printf '%s\t%s\t%s\tn/a\tn/a\n' "$f" rotate rops >> "$results"
  measure "$f" rotate signet "$signet rotate $f.sops.yaml"
  measure "$f" updatekeys sops "$sops updatekeys -y $f.upd.yaml" "cp $f.upd.orig.yaml $f.upd.yaml"
  printf '%s\t%s\t%s\tn/a\tn/a\n' "$f" updatekeys rops >> "$results"
  measure "$f" updatekeys signet "$signet updatekeys -y $f.upd.yaml" "cp $f.upd.orig.yaml $f.upd.yaml"
done

ls -l small.yaml large.yaml small.sops.yaml large.sops.yaml >&2
echo "sops $("$sops" --version --disable-version-check | head -1 | awk '{print $2}'), rops $ROPS_VERSION, signet $(git -C "$OLDPWD" rev-parse --short HEAD); $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg); median of $runs runs (time), of $rss_runs (peak RSS)"
python3 - "$results" <<'PY'
import sys
rows = {}
order = []
for line in open(sys.argv[1]):
    f, op, tool, t, rss = line.rstrip("\n").split("\t")
    if (f, op) not in rows:
        rows[(f, op)] = {}
        order.append((f, op))
    rows[(f, op)][tool] = (t, rss)
def cell(v):
    t, rss = v
    if t in ("n/a", "fail"):
        return t
    t = float(t)
    shown = f"{t*1000:.1f} ms" if t < 1 else f"{t:.3f} s"
    return f"{shown} / {int(rss)/1024:.0f} MiB"
def ratio(a, b):
    if a[0] in ("n/a", "fail") or b[0] in ("n/a", "fail"):
        return "n/a"
    return f"{float(a[0])/float(b[0]):.1f}x"
print("| input | operation | sops 3.13.2 (time / peak RSS) | rops | signet | signet vs sops | signet vs rops |")
print("|---|---|---|---|---|---|---|")
for key in order:
    r = rows[key]
    s, o, g = r.get("sops", ("n/a", "")), r.get("rops", ("n/a", "")), r.get("signet", ("n/a", ""))
    print(f"| {key[0]} | {key[1]} | {cell(s)} | {cell(o)} | {cell(g)} | {ratio(s, g)} | {ratio(o, g)} |")
PY

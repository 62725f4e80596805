#!/usr/bin/env bash
# Whole-process comparison of `signet seal` / `signet unseal` with kubeseal v0.40.0, using hyperfine.
#
#   scripts/bench-seal.sh [N_SECRETS]      (default 1000; 3 items per Secret; RSA-4096 like the controller)
#
# Cases:
#   seal-stream    seal a multi-document YAML stream of N Secrets (one process each tool)
#   unseal-object  unseal one SealedSecret holding all N*3 items (one process each tool: pure decryption)
#   unseal-stream  unseal the N-document sealed stream: signet takes the stream in one process;
#                  kubeseal --recovery-unseal reads one object per run, so it runs once per document
#                  (that is what recovering a stream with kubeseal costs)
# Prints hyperfine's tables and the kubeseal/signet ratio of mean times. Needs hyperfine, python3 and
# the peers from scripts/bootstrap (SIGNET_PEER_BIN, default /root/.cache/signet/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
PEERS=${SIGNET_PEER_BIN:-/root/.cache/signet/bin}
KUBESEAL=$PEERS/kubeseal
command -v hyperfine >/dev/null || { echo "bench-seal: hyperfine not found (apt-get install hyperfine)" >&2; exit 1; }
[ -x "$KUBESEAL" ] || { echo "bench-seal: kubeseal not found at $KUBESEAL" >&2; exit 1; }

cargo build --release --quiet -p signet
TARGET=${CARGO_TARGET_DIR:-target}
SIGNET=$(realpath "$TARGET/release/signet")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

"$SIGNET" keys new-sealing-key --key-out key.pem --cert-out cert.pem 2>/dev/null
python3 - "$N" <<'PY'
import base64, json, sys
n = int(sys.argv[1])
docs, items = [], {}
for i in range(n):
    data = {
        "username": base64.b64encode(f"user-{i}".encode()).decode(),
        "password": base64.b64encode(f"password-{i:06d}-correct-horse-battery".encode()).decode(),
        "url": base64.b64encode(f"postgres://db-{i}.prod.svc:5432/app".encode()).decode(),
    }
    docs.append(f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-{i}\n  namespace: prod\ntype: Opaque\ndata:\n"
                + "".join(f"  {k}: {v}\n" for k, v in data.items()))
    items.update({f"{k}-{i}": v for k, v in data.items()})
open("stream.yaml", "w").write("---\n".join(docs))
big = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "big", "namespace": "prod"}, "data": items}
open("big.json", "w").write(json.dumps(big))
PY
"$SIGNET" seal --cert cert.pem -o yaml -w sealed-stream.yaml stream.yaml
"$SIGNET" seal --cert cert.pem -w sealed-big.json big.json
mkdir docs
python3 - <<'PY'
text = open("sealed-stream.yaml").read()
docs = [d for d in text.split("---\n") if d.strip()]
for i, d in enumerate(docs):
    open(f"docs/{i:05d}.yaml", "w").write(d)
PY
# Sanity: both tools open what the other made.
"$KUBESEAL" --recovery-unseal --recovery-private-key key.pem < docs/00000.yaml >/dev/null
"$KUBESEAL" --cert cert.pem -o yaml < stream.yaml > kubeseal-stream.yaml
"$SIGNET" unseal --recovery-private-key key.pem kubeseal-stream.yaml >/dev/null

cat > kubeseal-unseal-stream.sh <<SH
#!/bin/sh
for f in docs/*.yaml; do "$KUBESEAL" --recovery-unseal --recovery-private-key key.pem < "\$f" >/dev/null || exit 1; done
SH
chmod +x kubeseal-unseal-stream.sh

run() { # name, signet command, kubeseal command, runs
  hyperfine --style basic --warmup 1 --runs "$4" --export-json "$1.json" \
    -n "signet $1" "$2" -n "kubeseal $1" "$3" >&2
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + ".json"))["results"]
s, k = r[0]["mean"], r[1]["mean"]
print(f"| {sys.argv[1]} | {s*1000:.0f} ms | {k*1000:.0f} ms | {k/s:.1f}x |")
PY
}

{
  echo "| case ($N Secrets x 3 items, RSA-4096) | signet | kubeseal | kubeseal/signet |"
  echo "|---|---|---|---|"
  run seal-stream "$SIGNET seal --cert cert.pem -o yaml stream.yaml" "$KUBESEAL --cert cert.pem -o yaml -f stream.yaml" 5
  run unseal-object "$SIGNET unseal --recovery-private-key key.pem sealed-big.json" "$KUBESEAL --recovery-unseal --recovery-private-key key.pem -f sealed-big.json" 3
  run unseal-stream "$SIGNET unseal --recovery-private-key key.pem sealed-stream.yaml" "./kubeseal-unseal-stream.sh" 2
} > table.md
echo
cat table.md

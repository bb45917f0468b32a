#!/usr/bin/env bash
# `make test-cluster`: the real-cluster tier from a cold machine state and back.
#   1. the kit's up.sh (containerd, bridge, control plane, DNS, kubelet, kube-proxy; about 1 min);
#   2. pytest -m realcluster tests/realcluster (builds the kit's Airflow/Postgres images and the platform image
#      when missing, applies the platform, runs the tests, removes what it deployed);
#   3. the kit's down.sh, then a check that nothing is left: no kit process, no mount under $KC_ROOT, no bridge,
#      no KUBE-/CNI- iptables chain.
# Without the kit's binaries it skips, printing the commands that build them.  Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
PY=${PY:-.venv/bin/python}
info=$($PY -c 'from tests.realcluster.kit import Kit; k = Kit.from_environment(); print(k.scripts); print(k.root); print(k.missing() or "")')
SCRIPTS=$(sed -n 1p <<<"$info"); ROOT=$(sed -n 2p <<<"$info"); MISSING=$(sed -n 3p <<<"$info")
if [ -n "$MISSING" ]; then
  echo "test-cluster skipped: $MISSING"
  $PY -m pytest -m realcluster tests/realcluster -q -rs -p no:cacheprovider "$@"
  exit $?
fi
down() { "$SCRIPTS/down.sh" >/tmp/kc-down.log 2>&1 || { cat /tmp/kc-down.log; return 1; }; }
echo "== up ($(date +%T))"
# A cluster already running is reused: re-running up.sh rewrites kube-proxy's config file, and kube-proxy
# exits when that file changes (Services then stop working), so up.sh runs only when something is down.
running=1
for n in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy containerd; do
  f="$ROOT/run/$n.pid"; { [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; } || running=0
done
if [ "$running" = 1 ]; then echo "cluster already running: reused"
else "$SCRIPTS/up.sh" >/tmp/kc-up.log 2>&1 || { tail -30 /tmp/kc-up.log; down; exit 1; }; fi
echo "== pytest -m realcluster ($(date +%T))"
$PY -m pytest -m realcluster tests/realcluster -q -rs -p no:cacheprovider "$@"
rc=$?
echo "== down ($(date +%T))"
down || rc=1
left=""
for f in "$ROOT"/run/*.pid; do [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && left+=" process:$(basename "$f" .pid)"; done
awk -v r="$ROOT/" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | grep -q . && left+=" mounts-under-$ROOT"
ip link show kc0 >/dev/null 2>&1 && left+=" bridge:kc0"
for t in filter nat mangle; do iptables -t $t -S 2>/dev/null | grep -qE '^-N (KUBE-|CNI-)' && left+=" iptables:$t"; done
if [ -n "$left" ]; then echo "left behind:$left"; rc=1; else echo "left behind: nothing (processes, mounts, bridge, iptables chains)"; fi
exit $rc

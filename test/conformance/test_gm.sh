#!/usr/bin/env bash
# tandem-gm end to end: a real tandem-apiserver with Tandem's CRDs, the GM with leader election
# off, and a fake LocalController (python websockets, Sedna's envelope) that must receive the
# Dataset as "insert", report numberOfSamples (visible in kubectl), then receive "delete".
# Also /healthz, /readyz, /metrics, and a clean exit on SIGTERM.
source "$(dirname "$0")/lib.sh"

GM="$BUILD/bin/tandem-gm"
GM_PID=""
LC_PID=""

gm_cleanup() {
    local rc=$?
    [ -n "$LC_PID" ] && kill "$LC_PID" 2>/dev/null && wait "$LC_PID" 2>/dev/null
    if [ -n "$GM_PID" ] && kill -0 "$GM_PID" 2>/dev/null; then
        kill -KILL "$GM_PID" 2>/dev/null
        wait "$GM_PID" 2>/dev/null
    fi
    (exit "$rc")
    _lib_exit
}
trap gm_cleanup EXIT

section "flags"
assert_fails_with "--ws-listen: foo" "$GM" --ws-listen foo
assert_fails_with "--leader-elect: maybe" "$GM" --leader-elect=maybe
assert_fails_with "unknown flag --bogus" "$GM" --bogus
printf 'ws-listen: 127.0.0.1:1\nwebsocket: x\n' >"$TEST_TMP/bad.yaml"
assert_fails_with "unknown key websocket" "$GM" --config "$TEST_TMP/bad.yaml"
assert_ok "--help documents the flags" "$GM" --help
assert_contains "$OUT" "--node-tokens FILE" "--help lists --node-tokens"

section "setup"
start_apiserver || exit 1
assert_ok "CRDs applied" kc apply -f "$ROOT_DIR/crds/"
assert_wait 15 "Dataset CRD served" kc get datasets

WS_PORT="$(free_port)"
MET_PORT="$(free_port)"
HEALTH_PORT="$(free_port)"
GM_LOG="$TEST_TMP/gm.log"
"$GM" --kubeconfig "$KUBECONFIG" --ws-listen "127.0.0.1:$WS_PORT" \
    --metrics-listen "127.0.0.1:$MET_PORT" --health-listen "127.0.0.1:$HEALTH_PORT" \
    --leader-elect=false --log-level debug >"$GM_LOG" 2>&1 &
GM_PID=$!

health() { curl -sf -m 2 "http://127.0.0.1:$HEALTH_PORT$1"; }
assert_wait 20 "GM /healthz answers ok" health /healthz
assert_wait 20 "GM /readyz answers ok (caches synced)" health /readyz

section "fake LC"
LC_LOG="$TEST_TMP/lc.log"
"$PYTHON" - "$WS_PORT" "$LC_LOG" <<'PYEOF' >"$TEST_TMP/lc.out" 2>&1 &
import asyncio, base64, json, sys
import websockets

port, logpath = sys.argv[1], sys.argv[2]

def log(line):
    with open(logpath, "a") as f:
        f.write(line + "\n")

async def main():
    async with websockets.connect("ws://127.0.0.1:%s/" % port,
                                  extra_headers={"Node-Name": "edge-1"}) as ws:
        await ws.send(json.dumps({"namespace": "", "resourceKind": "", "resourceName": "",
                                  "operation": ""}))
        log("connected")
        while True:
            env = json.loads(await ws.recv())
            h = env.get("header", {})
            raw = env.get("content")
            obj = json.loads(base64.b64decode(raw)) if raw else None
            name = (obj or {}).get("metadata", {}).get("name", "")
            log("%s %s %s/%s content=%s kind=%s node=%s" % (
                h.get("operation"), h.get("resourceKind"), h.get("namespace"),
                h.get("resourceName"), name, (obj or {}).get("kind"),
                (obj or {}).get("spec", {}).get("nodeName")))
            if h.get("operation") == "insert" and h.get("resourceName") == "ds-1":
                rep = base64.b64encode(json.dumps({"numberOfSamples": 120}).encode()).decode()
                await ws.send(json.dumps({"header": {"namespace": h["namespace"],
                                                     "resourceKind": "Dataset",
                                                     "resourceName": "ds-1",
                                                     "operation": "status"},
                                          "content": rep}))
            if h.get("operation") == "delete" and h.get("resourceName") == "ds-1":
                log("done")
                return

asyncio.run(asyncio.wait_for(main(), 60))
PYEOF
LC_PID=$!
assert_wait 15 "LC connected" grep -q '^connected' "$LC_LOG"
assert_wait 15 "GM counts the connected node" \
    bash -c "curl -sf -m 2 http://127.0.0.1:$MET_PORT/metrics | grep -q '^tandem_gm_ws_connected_nodes 1'"

section "dataset downstream and upstream"
cat >"$TEST_TMP/ds.yaml" <<'EOF2'
apiVersion: sedna.io/v1alpha1
kind: Dataset
metadata:
  name: ds-1
  namespace: default
spec:
  url: /data/train.txt
  format: txt
  nodeName: edge-1
EOF2
assert_ok "Dataset created" kc apply -f "$TEST_TMP/ds.yaml"
assert_wait 20 "LC receives insert for the Dataset (full object, kind Dataset)" \
    grep -q '^insert dataset default/ds-1 content=ds-1 kind=Dataset node=edge-1' "$LC_LOG"
assert_wait 20 "status.numberOfSamples becomes 120" bash -c "[ \"\$(\"$KUBECTL\" --kubeconfig '$KUBECONFIG' get dataset ds-1 -o 'jsonpath={.status.numberOfSamples}')\" = 120 ]"
assert_ne "" "$(kc get dataset ds-1 -o 'jsonpath={.status.updateTime}')" "status.updateTime set"
ROW="$(kc get dataset ds-1 | sed -n 2p | tr -s ' ')"
assert_match "$ROW" '^ds-1 txt edge-1 120 ' "kubectl get dataset shows 120 under SAMPLES"

assert_ok "Dataset deleted" kc delete dataset ds-1 --wait=false
assert_wait 20 "LC receives delete with the last known object" \
    grep -q '^delete dataset default/ds-1 content=ds-1' "$LC_LOG"
assert_wait 10 "fake LC finished" bash -c "! kill -0 $LC_PID 2>/dev/null"
wait "$LC_PID" 2>/dev/null
assert_eq 0 "$?" "fake LC exited cleanly"
LC_PID=""

section "reconnect resync"
cat >"$TEST_TMP/ds2.yaml" <<'EOF2'
apiVersion: sedna.io/v1alpha1
kind: Dataset
metadata:
  name: ds-2
  namespace: default
spec:
  url: /data/other.csv
  format: csv
  nodeName: edge-1
EOF2
assert_ok "second Dataset created while edge-1 is offline" kc apply -f "$TEST_TMP/ds2.yaml"
assert_ok "reconnecting LC receives it" timeout 20 "$PYTHON" - "$WS_PORT" <<'PYEOF'
import asyncio, base64, json, sys
import websockets

async def main():
    async with websockets.connect("ws://127.0.0.1:%s/" % sys.argv[1],
                                  extra_headers={"Node-Name": "edge-1"}) as ws:
        await ws.send(json.dumps({"namespace": "", "resourceKind": "", "resourceName": "",
                                  "operation": ""}))
        while True:
            h = json.loads(await ws.recv())["header"]
            if h["operation"] == "insert" and h["resourceName"] == "ds-2":
                return

asyncio.run(asyncio.wait_for(main(), 15))
PYEOF

section "metrics"
MET="$(curl -sf -m 5 "http://127.0.0.1:$MET_PORT/metrics")"
assert_contains "$MET" "controller_runtime_reconcile_total" "/metrics has controller_runtime_reconcile_total"
assert_contains "$MET" "tandem_gm_ws_connected_nodes" "/metrics has tandem_gm_ws_connected_nodes"

section "shutdown"
kill -TERM "$GM_PID"
if wait_for 15 bash -c "! kill -0 $GM_PID 2>/dev/null"; then
    wait "$GM_PID"
    assert_eq 0 "$?" "GM exits 0 on SIGTERM"
else
    fail "GM exits within 15 s of SIGTERM" "$(tail -n 30 "$GM_LOG")"
fi
GM_PID=""
if [ "$FAILED" -ne 0 ]; then
    echo "--- gm log (tail)"
    tail -n 40 "$GM_LOG"
    echo "--- lc log"
    cat "$LC_LOG" "$TEST_TMP/lc.out" 2>/dev/null
fi

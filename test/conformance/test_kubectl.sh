#!/usr/bin/env bash
# Drives the real kubectl against a fresh tandem-apiserver: discovery, the Widget CRD
# (schema, printer columns, validation, patches, apply, watch, status subresource),
# namespaces, Deployments/GC, Endpoints, raw endpoints and request limits.
source "$(dirname "$0")/lib.sh"

start_apiserver || exit 1
W="$TESTDATA"
CRD=widgets.example.tandem.io

# jp RESOURCE JSONPATH [kubectl args]: one field through kubectl -o jsonpath.
jp() { kc get "$1" -o "jsonpath=$2" "${@:3}" 2>&1; }
# squeeze: collapse runs of blanks so table columns compare predictably.
squeeze() { tr -s ' \t' ' ' | sed 's/ $//'; }

section "discovery"
assert_ok "kubectl api-resources" kc api-resources
assert_match "$OUT" '^pods +po +v1 +true +Pod' "api-resources lists pods with short name po"
assert_match "$OUT" '^deployments +deploy +apps/v1 +true +Deployment' "api-resources lists deployments"
assert_ok "kubectl get --raw /version" kc get --raw /version
assert_contains "$OUT" '"gitVersion"' "/version has gitVersion"
assert_eq "1" "$(printf '%s' "$OUT" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["major"])' 2>&1)" "/version major is 1"

section "CRD install"
assert_ok "apply -f CRD" kc apply -f "$W/crd-widgets.yaml"
assert_contains "$OUT" "customresourcedefinition.apiextensions.k8s.io/$CRD created" "apply reports CRD created"
assert_ok "kubectl wait Established" kc wait --for=condition=Established "crd/$CRD" --timeout=20s
assert_contains "$OUT" "condition met" "CRD Established condition met"
assert_eq "True" "$(jp "crd/$CRD" '{.status.conditions[?(@.type=="NamesAccepted")].status}')" "CRD NamesAccepted=True"
assert_ok "api-resources after CRD" kc api-resources
assert_match "$OUT" '^widgets +wd +example.tandem.io/v1 +true +Widget' "api-resources lists widgets with short name wd"
assert_ok "api-resources --api-group" kc api-resources --api-group=example.tandem.io -o name
assert_eq "widgets.example.tandem.io" "$OUT" "api-resources -o name for the group"

section "apply and printer columns"
assert_ok "apply widget (client-side)" kc apply -f "$W/widget-good.yaml"
assert_contains "$OUT" "widget.example.tandem.io/alpha created" "apply reports widget created"
assert_ok "get wd" kc get wd
header="$(printf '%s\n' "$OUT" | head -n 1 | squeeze)"
assert_eq "NAME PHASE SIZE READY AGE" "$header" "get wd header shows printer columns"
row="$(printf '%s\n' "$OUT" | sed -n 2p | squeeze)"
assert_match "$row" '^alpha 3 [0-9]+s$' "get wd row: name, defaulted size 3, age (empty phase/ready)"
assert_ok "get widgets.example.tandem.io alpha" kc get widgets.example.tandem.io alpha -o name
assert_eq "widget.example.tandem.io/alpha" "$OUT" "full resource.group name resolves"
assert_ok "get all (category all)" kc get all -o name
assert_contains "$OUT" "widget.example.tandem.io/alpha" "kubectl get all includes widgets (category all)"

section "defaults and pruning"
assert_ok "get wd -o yaml" kc get wd alpha -o yaml
assert_contains "$OUT" "  size: 3" "default size: 3 is applied"
assert_contains "$OUT" "mode: fast" "mode kept"
assert_eq "1" "$(jp wd/alpha '{.metadata.generation}')" "generation starts at 1"
# --validate=false makes kubectl send the unknown field; the server must prune it.
assert_ok "apply unknown field with --validate=false" kc apply --validate=false -f "$W/widget-unknown-field.yaml"
assert_ok "get pruned widget" kc get wd colourful -o 'jsonpath={.spec}'
assert_not_contains "$OUT" "colour" "unknown field spec.colour pruned from stored object"
assert_contains "$OUT" '"mode":"fast"' "known fields of pruned object kept"
kc delete wd colourful --wait=true >/dev/null 2>&1

section "validation at apply"
assert_fails_with 'unknown field "spec.colour"' kc apply -f "$W/widget-unknown-field.yaml"
assert_fails_with 'spec.mode' kc apply -f "$W/widget-bad-enum.yaml"
assert_contains "$ERR" 'Unsupported value: "medium"' "enum error names the bad value"
assert_fails_with 'spec.size' kc apply -f "$W/widget-bad-range.yaml"
assert_contains "$ERR" 'less than or equal to 10' "maximum error states the bound"
assert_fails_with 'spec.ratio' kc apply -f "$W/widget-bad-ratio.yaml"
assert_fails_with 'spec.name' kc apply -f "$W/widget-bad-pattern.yaml"
assert_contains "$ERR" '^[a-z]+$' "pattern error quotes the pattern"
assert_fails_with 'size above 5 needs slow mode' kc apply -f "$W/widget-bad-cel.yaml"
assert_contains "$ERR" 'spec' "CEL error names the field spec"
assert_fails_with 'spec.mode: Required value' kc apply -f "$W/widget-missing-mode.yaml"
for n in colourful bad-enum bad-range bad-ratio bad-pattern bad-cel no-mode; do
    if kc get wd "$n" >/dev/null 2>&1; then fail "invalid widget $n was not stored"; else pass "invalid widget $n was not stored"; fi
done

section "explain"
assert_ok "explain widgets.spec" kc explain widgets.spec
assert_contains "$OUT" "Desired state of the widget." "explain shows spec description"
assert_contains "$OUT" "Number of parts in the widget." "explain shows size description"
assert_contains "$OUT" "Operating mode of the widget." "explain shows mode description"
assert_match "$OUT" 'mode.*<string> -required-' "explain marks mode required"
assert_ok "explain wd.spec.size" kc explain wd.spec.size
assert_contains "$OUT" "<integer>" "explain shows the integer type"

section "patches"
assert_ok "patch --type merge" kc patch wd alpha --type merge -p '{"spec":{"ratio":0.25}}'
assert_eq "0.25" "$(jp wd/alpha '{.spec.ratio}')" "merge patch applied"
assert_ok "patch --type json" kc patch wd alpha --type json -p '[{"op":"replace","path":"/spec/size","value":4},{"op":"add","path":"/metadata/labels/patched","value":"yes"}]'
assert_eq "4 yes" "$(jp wd/alpha '{.spec.size} {.metadata.labels.patched}')" "json patch applied"
assert_fails_with 'size above 5 needs slow mode' kc patch wd alpha --type merge -p '{"spec":{"size":8}}'
assert_eq "4" "$(jp wd/alpha '{.spec.size}')" "rejected patch left the object unchanged"
if kc patch wd alpha --type strategic -p '{"spec":{"size":2}}' >"$TEST_TMP/sp.out" 2>&1; then
    fail "strategic merge patch on a custom resource is refused" "$(cat "$TEST_TMP/sp.out")"
else
    assert_match "$(cat "$TEST_TMP/sp.out")" '(strategic-merge-patch|[Uu]nsupported ?[Mm]edia ?[Tt]ype|415)' \
        "strategic merge patch on a custom resource is refused (unsupported media type)"
fi
assert_eq "4" "$(jp wd/alpha '{.spec.size}')" "strategic patch did not change the widget"

section "re-apply after edit"
gen0="$(jp wd/alpha '{.metadata.generation}')"
rv0="$(jp wd/alpha '{.metadata.resourceVersion}')"
sed -e 's/ratio: 0.5/ratio: 0.75/' "$W/widget-good.yaml" >"$TEST_TMP/widget-edited.yaml"
assert_ok "apply edited file" kc apply -f "$TEST_TMP/widget-edited.yaml"
assert_contains "$OUT" "widget.example.tandem.io/alpha configured" "apply reports configured"
assert_eq "0.75" "$(jp wd/alpha '{.spec.ratio}')" "re-apply updated spec.ratio"
assert_eq "$((gen0 + 1))" "$(jp wd/alpha '{.metadata.generation}')" "re-apply bumped generation"
assert_ne "$rv0" "$(jp wd/alpha '{.metadata.resourceVersion}')" "re-apply changed resourceVersion"
assert_ok "apply unchanged file" kc apply -f "$TEST_TMP/widget-edited.yaml"
assert_contains "$OUT" "unchanged" "apply of the same file reports unchanged"

section "get --watch"
timeout 20 "$KUBECTL" --kubeconfig "$KUBECONFIG" get wd alpha --watch -o 'jsonpath={.spec.ratio}{"\n"}' \
    >"$TEST_TMP/watch.out" 2>"$TEST_TMP/watch.err" &
watch_pid=$!
assert_wait 10 "watch printed the current state" grep -qx '0.75' "$TEST_TMP/watch.out"
kc patch wd alpha --type merge -p '{"spec":{"ratio":0.125}}' >/dev/null
assert_wait 10 "get --watch shows a change made meanwhile" grep -qx '0.125' "$TEST_TMP/watch.out"
kill "$watch_pid" 2>/dev/null
wait "$watch_pid" 2>/dev/null

section "status subresource and kubectl wait"
kc wait --for=jsonpath='{.status.phase}'=Done wd/alpha --timeout=20s >"$TEST_TMP/wait.out" 2>&1 &
wait_pid=$!
sleep 0.5
gen1="$(jp wd/alpha '{.metadata.generation}')"
assert_ok "patch --subresource=status" kc patch wd alpha --subresource=status --type merge \
    -p '{"status":{"phase":"Done","conditions":[{"type":"Ready","status":"True","reason":"Built"}]},"spec":{"size":9,"mode":"slow"}}'
if wait "$wait_pid"; then pass "kubectl wait --for=jsonpath={.status.phase}=Done returns"; else
    fail "kubectl wait --for=jsonpath={.status.phase}=Done returns" "$(cat "$TEST_TMP/wait.out")"
fi
assert_eq "Done" "$(jp wd/alpha '{.status.phase}')" "status set through /status"
assert_eq "4 fast" "$(jp wd/alpha '{.spec.size} {.spec.mode}')" "spec changes sent to /status are ignored"
assert_eq "$gen1" "$(jp wd/alpha '{.metadata.generation}')" "status update does not bump generation"
assert_ok "merge patch of status on the main resource" kc patch wd alpha --type merge -p '{"status":{"phase":"Hacked"},"spec":{"size":5}}'
assert_eq "Done 5" "$(jp wd/alpha '{.status.phase} {.spec.size}')" "status changes on the main resource are ignored, spec applied"
assert_ok "get wd after status" kc get wd alpha
row="$(printf '%s\n' "$OUT" | sed -n 2p | squeeze)"
assert_match "$row" '^alpha Done 5 True [0-9]+[sm]' "printer columns show phase, size and Ready condition"

section "describe"
assert_ok "describe wd alpha" kc describe wd alpha
assert_match "$OUT" '^Name: +alpha' "describe shows Name"
assert_match "$OUT" '^Kind: +Widget' "describe shows Kind"
assert_match "$OUT" 'Mode: +fast' "describe shows spec fields"
assert_match "$OUT" 'Phase: +Done' "describe shows status fields"

section "server-side apply"
cat >"$TEST_TMP/ssa.yaml" <<'EOF'
apiVersion: example.tandem.io/v1
kind: Widget
metadata:
  name: beta
spec:
  mode: slow
  size: 7
EOF
assert_ok "apply --server-side (create)" kc apply --server-side -f "$TEST_TMP/ssa.yaml"
assert_contains "$OUT" "widget.example.tandem.io/beta serverside-applied" "server-side apply created beta"
assert_eq "7 slow" "$(jp wd/beta '{.spec.size} {.spec.mode}')" "server-side apply stored the spec"
sed -i 's/size: 7/size: 9/' "$TEST_TMP/ssa.yaml"
assert_ok "apply --server-side (update)" kc apply --server-side -f "$TEST_TMP/ssa.yaml"
assert_eq "9" "$(jp wd/beta '{.spec.size}')" "server-side apply updated the spec"
assert_eq "2" "$(jp wd/beta '{.metadata.generation}')" "server-side update bumped generation"
sed -i 's/mode: slow/mode: fast/' "$TEST_TMP/ssa.yaml"
assert_fails_with 'size above 5 needs slow mode' kc apply --server-side -f "$TEST_TMP/ssa.yaml"

section "delete -f"
assert_ok "delete -f" kc delete -f "$TEST_TMP/widget-edited.yaml"
assert_contains "$OUT" 'widget.example.tandem.io "alpha" deleted' "delete -f reports deleted"
assert_fails_with 'NotFound' kc get wd alpha
assert_contains "$ERR" 'widgets.example.tandem.io "alpha" not found' "deleted widget is not found"

section "namespaces"
if ! assert_ok "kubectl create ns x" kc create ns x; then
    # Keep going so the deletion semantics are still checked.
    printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n' | kc apply -f - >/dev/null 2>&1
fi
assert_eq "Active" "$(jp ns/x '{.status.phase}')" "namespace x is Active"
assert_ok "create widget in x" kc apply -n x -f "$W/widget-good.yaml"
assert_ok "create pod in x" kc apply -n x -f "$W/pod-manual.yaml"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm1\ndata:\n  k: v\n' >"$TEST_TMP/cm1.yaml"
assert_ok "create configmap in x" kc apply -n x -f "$TEST_TMP/cm1.yaml"
assert_eq "alpha" "$(jp wd '{.items[*].metadata.name}' -n x)" "widget listed in x"
assert_ok "delete ns x" kc delete ns x --timeout=30s
ns_gone() { ! kc get ns x >/dev/null 2>&1; }
assert_wait 20 "namespace x goes away" ns_gone
assert_fails_with 'NotFound' kc get cm cm1 -n x
assert_fails_with 'NotFound' kc get wd alpha -n x
assert_fails_with 'NotFound' kc get pod manual -n x
assert_eq "" "$(kc get cm,pods,wd -n x -o name 2>/dev/null)" "nothing is listed in the deleted namespace"
assert_fails_with 'NotFound' kc apply -n x -f "$TEST_TMP/cm1.yaml"

section "deployments"
pods_of() { kc get pods -l "app=$1" -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}' 2>/dev/null | grep -c .; }
pod_count_is() { [ "$(pods_of "$1")" = "$2" ]; }
assert_ok "apply deployment" kc apply -f "$W/deployment.yaml"
assert_wait 15 "deployment creates 2 pods" pod_count_is web 2
names="$(kc get pods -l app=web -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}')"
first="$(printf '%s\n' "$names" | head -n 1)"
hash1="$(jp "pod/$first" '{.metadata.labels.pod-template-hash}')"
assert_match "$hash1" '^[a-z0-9]+$' "pod carries pod-template-hash label"
assert_match "$first" "^web-$hash1-[a-z0-9]{5}\$" "pod name is <deploy>-<hash>-<rand>"
assert_eq "Deployment web true" "$(jp "pod/$first" '{.metadata.ownerReferences[0].kind} {.metadata.ownerReferences[0].name} {.metadata.ownerReferences[0].controller}')" "pod owned by the deployment"
assert_eq "$(jp deploy/web '{.metadata.uid}')" "$(jp "pod/$first" '{.metadata.ownerReferences[0].uid}')" "ownerReference uid is the deployment's"
assert_eq "Pending" "$(jp "pod/$first" '{.status.phase}')" "pod without nodeName stays Pending"
assert_eq "False" "$(jp "pod/$first" '{.status.conditions[?(@.type=="PodScheduled")].status}')" "pod without nodeName has PodScheduled=False"
assert_eq "2" "$(jp deploy/web '{.status.replicas}')" "deployment status.replicas is 2"

assert_ok "delete one pod" kc delete pod "$first" --wait=true
recreated() { pod_count_is web 2 && ! kc get pod "$first" >/dev/null 2>&1; }
assert_wait 15 "deleted pod is replaced" recreated

assert_ok "set image" kc set image deployment/web web=nginx:1.26
new_hash() {
    local h imgs
    h="$(kc get pods -l app=web -o 'jsonpath={.items[*].metadata.labels.pod-template-hash}')"
    imgs="$(kc get pods -l app=web -o 'jsonpath={.items[*].spec.containers[0].image}')"
    [ "$(pods_of web)" = 2 ] && [[ "$h" != *"$hash1"* ]] && [ "$imgs" = "nginx:1.26 nginx:1.26" ]
}
assert_wait 20 "template change recreates pods with a new hash and image" new_hash

if ! assert_ok "kubectl scale --replicas=3 (deployments/scale)" kc scale deployment web --replicas=3; then
    kc patch deployment web --type merge -p '{"spec":{"replicas":3}}' >/dev/null 2>&1
fi
assert_wait 15 "scaling up to 3 creates a third pod" pod_count_is web 3
assert_ok "patch replicas to 1" kc patch deployment web --type merge -p '{"spec":{"replicas":1}}'
assert_wait 15 "scaling down to 1 deletes pods" pod_count_is web 1

section "endpoints"
assert_ok "apply service and manual pod" kc apply -f "$W/service.yaml" -f "$W/pod-manual.yaml"
assert_eq "Pending" "$(jp pod/manual '{.status.phase}')" "manual pod is Pending until something reports it"
assert_eq "True" "$(jp pod/manual '{.status.conditions[?(@.type=="PodScheduled")].status}')" "pod with nodeName is PodScheduled=True"
assert_wait 10 "endpoints web exist" kc get endpoints web
assert_eq "" "$(jp endpoints/web '{.subsets[*].addresses[*].ip}')" "no ready addresses for pending pods"
sed -e 's/app: web$/app: manual/' -e 's/name: web$/name: manual/' "$W/service.yaml" >"$TEST_TMP/svc-manual.yaml"
assert_ok "apply service manual" kc apply -f "$TEST_TMP/svc-manual.yaml"
assert_ok "report manual pod ready" kc patch pod manual --subresource=status --type merge \
    -p '{"status":{"phase":"Running","podIP":"10.0.0.5","podIPs":[{"ip":"10.0.0.5"}],"conditions":[{"type":"PodScheduled","status":"True"},{"type":"Ready","status":"True"}]}}'
ep_ready() { [ "$(jp endpoints/manual '{.subsets[0].addresses[0].ip}')" = "10.0.0.5" ]; }
assert_wait 10 "ready pod appears in endpoints addresses" ep_ready
assert_eq "node-a Pod manual 80" "$(jp endpoints/manual '{.subsets[0].addresses[0].nodeName} {.subsets[0].addresses[0].targetRef.kind} {.subsets[0].addresses[0].targetRef.name} {.subsets[0].ports[0].port}')" "endpoint address has nodeName, targetRef and port"
assert_ok "report manual pod not ready" kc patch pod manual --subresource=status --type json \
    -p '[{"op":"replace","path":"/status/conditions/1/status","value":"False"}]'
ep_notready() { [ "$(jp endpoints/manual '{.subsets[0].notReadyAddresses[0].ip}')" = "10.0.0.5" ]; }
assert_wait 10 "unready pod moves to notReadyAddresses" ep_notready

section "garbage collection"
assert_ok "delete deployment" kc delete deployment web --wait=true
assert_wait 20 "deleting the deployment removes its pods" pod_count_is web 0
sed -e 's/name: web$/name: orph/' -e 's/app: web$/app: orph/' "$W/deployment.yaml" >"$TEST_TMP/orph.yaml"
assert_ok "apply deployment orph" kc apply -f "$TEST_TMP/orph.yaml"
assert_wait 15 "deployment orph creates 2 pods" pod_count_is orph 2
assert_ok "delete --cascade=orphan" kc delete deployment orph --cascade=orphan --wait=true
assert_fails_with 'NotFound' kc get deployment orph
sleep 1
assert_eq "2" "$(pods_of orph)" "orphaned pods remain"
assert_eq "" "$(kc get pods -l app=orph -o 'jsonpath={.items[*].metadata.ownerReferences[*].uid}')" "orphaned pods have no ownerReferences"

section "raw endpoints and limits"
assert_ok "get --raw /openapi/v3" kc get --raw /openapi/v3
assert_contains "$OUT" '"apis/example.tandem.io/v1"' "/openapi/v3 lists the CRD group version"
assert_contains "$OUT" '"api/v1"' "/openapi/v3 lists api/v1"
assert_ok "get --raw /openapi/v3/apis/example.tandem.io/v1" kc get --raw /openapi/v3/apis/example.tandem.io/v1
assert_contains "$OUT" 'size above 5 needs slow mode' "CRD openapi v3 document carries the CEL rule"
assert_ok "get --raw /apis" kc get --raw /apis
assert_contains "$OUT" '"example.tandem.io"' "/apis lists the CRD group"

"$PYTHON" - "$TEST_TMP/big.json" <<'EOF'
import json, sys
body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
        "data": {"x": "a" * (4 * 1024 * 1024)}}
json.dump(body, open(sys.argv[1], "w"))
EOF
assert_fails_with 'RequestEntityTooLarge' kc create -f "$TEST_TMP/big.json"
code="$(curl -s -o "$TEST_TMP/big.resp" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary @"$TEST_TMP/big.json" "http://127.0.0.1:$PORT/api/v1/namespaces/default/configmaps")"
assert_eq "413" "$code" "4 MiB body gets HTTP 413"
assert_contains "$(cat "$TEST_TMP/big.resp")" '"code":413' "413 body is a Status with code 413"
assert_fails_with 'NotFound' kc get cm big
# kubectl create --raw -f streams its body chunked: a clear 411, not a hang
printf '%s' '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"raw1"}}' > "$TEST_TMP/raw.json"
assert_fails_with "send a Content-Length" kc create --raw \
    /api/v1/namespaces/default/configmaps -f "$TEST_TMP/raw.json"
assert_fails_with 'error converting YAML to JSON' kc create -f "$W/malformed.yaml"
assert_contains "$ERR" 'line 5' "malformed YAML error names the line"
assert_fails_with 'invalid character' kc create -f "$W/malformed.json"
assert_ok "server still healthy" kc get --raw /readyz
assert_eq "ok" "$OUT" "/readyz says ok"

stop_apiserver

#!/usr/bin/env bash
# Installs Tandem's sedna.io CRDs (crds/) with the real kubectl into a fresh tandem-apiserver
# and checks what a Sedna user would notice: Sedna's own example manifests apply unchanged,
# `kubectl get` shows the printer columns (filled from status), worker template labels
# survive, `kubectl explain` works, and each validation rule rejects a bad manifest with a
# message naming the field.
source "$(dirname "$0")/lib.sh"

CRDS="$ROOT_DIR/crds"
S="$TESTDATA/sedna"

# jp RESOURCE JSONPATH: one field through kubectl -o jsonpath.
jp() { kc get "$1" -o "jsonpath=$2" 2>&1; }
# squeeze: collapse runs of blanks so table columns compare predictably.
squeeze() { tr -s ' \t' ' ' | sed 's/ $//'; }
# row RESOURCE [ARGS]: the first data row of `kubectl get`, squeezed.
row() { kc get "$@" 2>&1 | sed -n 2p | squeeze; }
# header RESOURCE [ARGS]: the header line of `kubectl get`, squeezed.
header() { kc get "$@" 2>&1 | head -n 1 | squeeze; }

# variant FILE KIND NAME EDIT...: writes the first KIND object of FILE, renamed to NAME and
# edited, as JSON to $TEST_TMP/NAME.json and prints that path. An EDIT is PATH=JSON (set) or
# -PATH (delete); PATH is dotted, list indexes are numbers. FILE must quote HH:MM times
# (PyYAML reads YAML 1.1 sexagesimal numbers, kubectl does not).
variant() {
    local out="$TEST_TMP/$3.json"
    "$PYTHON" - "$@" >"$out" <<'EOF' || return 1
import json, sys, yaml
src, kind, name, *edits = sys.argv[1:]
obj = next(d for d in yaml.safe_load_all(open(src)) if d and d.get("kind") == kind)
obj["metadata"]["name"] = name
for e in edits:
    delete = e.startswith("-")
    path, _, val = (e[1:], "", None) if delete else e.partition("=")
    keys = path.split(".")
    cur = obj
    for k in keys[:-1]:
        cur = cur[int(k)] if isinstance(cur, list) else cur.setdefault(k, {})
    last = int(keys[-1]) if isinstance(cur, list) else keys[-1]
    if delete:
        del cur[last]
    else:
        cur[last] = json.loads(val)
json.dump(obj, sys.stdout)
EOF
    printf '%s\n' "$out"
}

# rejects FIELD MESSAGE FILE KIND NAME EDIT...: the edited variant is refused at apply with
# an error naming FIELD and containing MESSAGE (if not empty), and nothing is stored.
rejects() {
    local field="$1" msg="$2" kind="$4" name="$5" f
    f="$(variant "$3" "$4" "$5" "${@:6}")" || { fail "variant $name built"; return 1; }
    assert_fails_with "$field" kc apply -f "$f" || return 1
    [ -z "$msg" ] || assert_contains "$ERR" "$msg" "$name: message says '$msg'"
    if kc get "$kind" "$name" >/dev/null 2>&1; then fail "rejected $name was not stored"; else
        pass "rejected $name was not stored"
    fi
}

# accepts NAME FILE KIND EDIT...: the edited variant is accepted.
accepts() {
    local name="$1" f
    f="$(variant "$2" "$3" "$1" "${@:4}")" || { fail "variant $name built"; return 1; }
    assert_ok "$name accepted" kc apply -f "$f"
}

start_apiserver || exit 1

section "install"
assert_ok "apply -f crds/" kc apply -f "$CRDS"
for crd in datasets models jointinferenceservices incrementallearningjobs federatedlearningjobs \
    lifelonglearningjobs; do
    assert_contains "$OUT" "customresourcedefinition.apiextensions.k8s.io/$crd.sedna.io created" \
        "$crd.sedna.io created"
done
assert_ok "all six CRDs Established" kc wait --for=condition=Established --timeout=20s \
    crd/datasets.sedna.io crd/models.sedna.io crd/jointinferenceservices.sedna.io \
    crd/incrementallearningjobs.sedna.io crd/federatedlearningjobs.sedna.io \
    crd/lifelonglearningjobs.sedna.io
assert_ok "api-resources --api-group=sedna.io" kc api-resources --api-group=sedna.io
for line in 'datasets +sedna.io/v1alpha1 +true +Dataset' 'models +sedna.io/v1alpha1 +true +Model' \
    'jointinferenceservices +ji +sedna.io/v1alpha1 +true +JointInferenceService' \
    'incrementallearningjobs +il +sedna.io/v1alpha1 +true +IncrementalLearningJob' \
    'federatedlearningjobs +fl +sedna.io/v1alpha1 +true +FederatedLearningJob' \
    'lifelonglearningjobs +ll +sedna.io/v1alpha1 +true +LifelongLearningJob'; do
    assert_match "$OUT" "^$line\$" "api-resources: ${line%% *}"
done

section "Sedna's manifests apply unchanged"
# Datasets and Models first: kubectl applies a directory in file-name order anyway.
for f in datasets-models.yaml ji-helmet-detection.yaml ji-answer-generation.yaml il-demo.yaml \
    il-helmet-detection.yaml il-dog-croissants.yaml fl-surface-defect.yaml ll-atcii.yaml \
    ll-robot-dog-delivery.yaml; do
    assert_ok "apply $f" kc apply -f "$S/$f"
    assert_not_contains "$OUT$ERR" "Warning" "apply $f: no warnings (no unknown fields)"
    # What kubectl read from the file versus what the server stored: every spec identical
    # (nothing pruned, nothing defaulted that the manifest did not say).
    kc create --dry-run=client -o json -f "$S/$f" >"$TEST_TMP/want.json" 2>&1
    kc get -o json -f "$S/$f" >"$TEST_TMP/got.json" 2>&1
    diff="$("$PYTHON" - "$TEST_TMP/want.json" "$TEST_TMP/got.json" <<'EOF' 2>&1
import json, sys
def objs(path):
    text, dec, pos, out = open(path).read(), json.JSONDecoder(), 0, []
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            break
        o, pos = dec.raw_decode(text, pos)
        out += o["items"] if o.get("kind") == "List" else [o]
    return {(o["kind"], o["metadata"]["name"]): o.get("spec") for o in out}
want, got = objs(sys.argv[1]), objs(sys.argv[2])
for k, spec in want.items():
    if got.get(k) != spec:
        print("%s/%s stored spec differs:\n want %s\n got  %s" % (k[0], k[1], json.dumps(spec), json.dumps(got.get(k))))
if not want:
    print("no objects read")
EOF
)"
    assert_eq "" "$diff" "$f: stored specs equal the manifest"
done
assert_eq "02:00 20:00" "$(jp il/helmet-detection-demo '{.spec.trainSpec.trigger.timer.start} {.spec.trainSpec.trigger.timer.end}')" \
    "unquoted timer values (Sedna's docs) are read as HH:MM strings"
assert_eq "24:00" "$(jp ll/atcii-classifier-demo '{.spec.trainSpec.trigger.timer.end}')" "timer end 24:00 accepted"
assert_eq "6 12Gi" "$(jp ll/robo-dog-delivery '{.spec.trainSpec.template.spec.containers[0].resources.limits.cpu} {.spec.trainSpec.template.spec.containers[0].resources.limits.memory}')" \
    "deep pod fields (resources) kept as written"

section "printer columns"
assert_ok "get ji,il,fl,ll,dataset,model" kc get ji,il,fl,ll,dataset,model
headers="$(printf '%s\n' "$OUT" | grep '^NAME' | squeeze)"
for h in "NAME STATUS ACTIVE FAILED EDGE-NODE AGE" "NAME STAGE STATE AGE" \
    "NAME PHASE ACTIVE SUCCEEDED FAILED AGE" "NAME FORMAT NODE SAMPLES AGE" "NAME FORMAT AGE"; do
    assert_contains "$headers" "$h" "header: $h"
done
assert_eq "2" "$(printf '%s\n' "$headers" | grep -cx 'NAME STAGE STATE AGE')" "il and ll both show STAGE STATE"
assert_eq "NAME STATUS ACTIVE FAILED EDGE-NODE CLOUD-NODE HEM AGE" "$(header ji -o wide)" "ji -o wide header"
assert_eq "NAME STAGE STATE DATASET DEPLOY-MODEL AGE" "$(header il -o wide)" "il -o wide header"
assert_eq "NAME STAGE STATE DATASET KB-MODELS AGE" "$(header ll -o wide)" "ll -o wide header"
assert_eq "NAME PHASE ACTIVE SUCCEEDED FAILED MESSAGE AGE" "$(header fl -o wide)" "fl -o wide header"
assert_eq "NAME FORMAT NODE SAMPLES URL UPDATED AGE" "$(header dataset -o wide)" "dataset -o wide header"
assert_eq "NAME FORMAT URL UPDATED AGE" "$(header model -o wide)" "model -o wide header"
assert_match "$(row ji helmet-detection-inference-example)" '^helmet-detection-inference-example edge-node-1 [0-9][0-9ms]*$' \
    "ji row before any status: only the edge node"
assert_match "$(row ji helmet-detection-inference-example -o wide)" ' edge-node-1 cloud-node IBT [0-9][0-9ms]*$' "ji wide row: nodes and HEM"
assert_match "$(row model base-model -o wide)" '^base-model ckpt /models/base_model [0-9][0-9ms]*$' "model wide row: format and url"
assert_ok "get sedna (category)" kc get sedna -o name
for r in dataset.sedna.io/incr-ds model.sedna.io/base-model incrementallearningjob.sedna.io/il-demo \
    jointinferenceservice.sedna.io/helmet-detection-inference-example \
    federatedlearningjob.sedna.io/surface-defect-detection lifelonglearningjob.sedna.io/atcii-classifier-demo; do
    assert_contains "$OUT" "$r" "get sedna lists $r"
done
assert_ok "get all (category)" kc get all -o name
assert_contains "$OUT" "incrementallearningjob.sedna.io/il-demo" "get all lists the jobs"
assert_not_contains "$OUT" "dataset.sedna.io/" "get all does not list datasets"

section "status fills the columns"
assert_ok "dataset status through --subresource=status" kc patch dataset incr-ds --subresource=status \
    --type=merge -p '{"status":{"numberOfSamples":42,"updateTime":"2025-01-02T03:04:05Z"}}'
assert_match "$(row dataset incr-ds)" '^incr-ds txt edge-node-1 42 [0-9][0-9ms]*$' "dataset SAMPLES shows 42"
assert_ok "il status" kc patch il il-demo --subresource=status --type=merge -p '{"status":{"conditions":[
    {"type":"Completed","status":"True","stage":"Deploy"},{"type":"Waiting","status":"True","stage":"Train"},
    {"type":"Running","status":"True","stage":"Train","message":"reported by lc"}]}}'
assert_match "$(row il il-demo)" '^il-demo Train Running [0-9][0-9ms]*$' "il shows the latest condition: Train Running"
assert_ok "ll status" kc patch ll atcii-classifier-demo --subresource=status --type=merge -p '{"status":{
    "conditions":[{"type":"Running","status":"True","stage":"Train"},{"type":"Completed","status":"True","stage":"Eval"}],
    "knowledgeBase":{"AIModels":{"numberOfAIModels":2,"listOfAIModels":[
        {"modelID":"t1","averagePrecision":0.9,"numberOfTrainSamples":10},
        {"modelID":"t2","averagePrecision":0.8,"numberOfTrainSamples":12}]},
      "AIClasses":{"numberOfAIClasses":1,"listOfAIClasses":["a"]},
      "samples":{"numberOfLabeledUnseenSample":22,"numberOfUnseenSample":0}}}}'
assert_match "$(row ll atcii-classifier-demo -o wide)" '^atcii-classifier-demo Eval Completed lifelong-dataset 2 [0-9][0-9ms]*$' \
    "ll shows Eval Completed and 2 knowledge base models"
assert_ok "fl status" kc patch fl surface-defect-detection --subresource=status --type=merge -p '{"status":{
    "phase":"Running","active":3,"succeeded":0,"failed":0,"startTime":"2025-01-02T03:04:05Z",
    "conditions":[{"type":"Training","status":"True","reason":"DoTraining","message":"Round 1 reaches at 2025-01-02 03:05:00"},
                  {"type":"Training","status":"True","reason":"DoTraining","message":"Round 2 reaches at 2025-01-02 03:06:00"}]}}'
assert_match "$(row fl surface-defect-detection)" '^surface-defect-detection Running 3 0 0 [0-9][0-9ms]*$' "fl shows phase and counts"
assert_contains "$(row fl surface-defect-detection -o wide)" "Round 2 reaches at" "fl wide shows the latest round"
assert_ok "ji status" kc patch ji helmet-detection-inference-example --subresource=status --type=merge -p '{"status":{
    "active":2,"failed":0,"conditions":[{"type":"Running","status":"True"}]}}'
assert_match "$(row ji helmet-detection-inference-example)" '^helmet-detection-inference-example Running 2 0 edge-node-1 [0-9][0-9ms]*$' \
    "ji shows Running 2 0"

section "template metadata is kept"
f="$(variant "$S/il-demo.yaml" IncrementalLearningJob il-labels \
    'spec.trainSpec.template.metadata={"labels":{"app":"helmet","tier":"edge"},"annotations":{"example.com/owner":"team-a"}}' \
    'spec.deploySpec.template.metadata={"name":"infer","labels":{"app":"helmet-infer"}}')"
assert_ok "apply IL with template labels" kc apply -f "$f"
assert_eq "helmet edge team-a" "$(jp il/il-labels '{.spec.trainSpec.template.metadata.labels.app} {.spec.trainSpec.template.metadata.labels.tier} {.spec.trainSpec.template.metadata.annotations.example\.com/owner}')" \
    "trainSpec.template.metadata labels and annotations survive"
assert_eq "infer helmet-infer" "$(jp il/il-labels '{.spec.deploySpec.template.metadata.name} {.spec.deploySpec.template.metadata.labels.app}')" \
    "deploySpec.template.metadata name and labels survive"
f="$(variant "$S/fl-surface-defect.yaml" FederatedLearningJob fl-labels \
    'spec.trainingWorkers.1.template.metadata={"labels":{"site":"edge-2"}}')"
assert_ok "apply FL with template labels" kc apply -f "$f"
assert_eq "edge-2" "$(jp fl/fl-labels '{.spec.trainingWorkers[1].template.metadata.labels.site}')" \
    "trainingWorkers[1].template.metadata.labels survive"
rejects 'spec.trainSpec.template.metadata.labels.n' 'string' "$S/il-demo.yaml" IncrementalLearningJob bad-label \
    'spec.trainSpec.template.metadata={"labels":{"n":3}}'

section "explain"
assert_ok "explain il.spec.trainSpec" kc explain il.spec.trainSpec
assert_match "$OUT" 'template.*<Object> -required-' "explain: template required"
assert_match "$OUT" 'trigger.*<Object> -required-' "explain: trigger required"
assert_contains "$OUT" "train worker" "explain: description of trainSpec"
assert_ok "explain operator" kc explain il.spec.trainSpec.trigger.condition.operator
assert_contains "$OUT" ">=" "explain lists the operators"
assert_ok "explain ji template metadata" kc explain ji.spec.edgeWorker.template.metadata
assert_match "$OUT" 'labels.*<map\[string\]string>' "explain: template.metadata.labels is a map of strings"
assert_ok "explain fl.spec.trainingWorkers" kc explain fl.spec.trainingWorkers
assert_match "$OUT" 'dataset.*<Object> -required-' "explain: trainingWorkers[].dataset required"

section "validation: triggers"
IL="$S/il-demo.yaml"
rejects 'spec.trainSpec.trigger.condition.operator' 'Unsupported value: "~="' "$IL" IncrementalLearningJob bad-op \
    'spec.trainSpec.trigger.condition.operator="~="'
assert_contains "$ERR" '">="' "operator error lists the supported operators"
rejects 'spec.deploySpec.trigger.condition.operator' 'Unsupported value: "greater"' "$IL" IncrementalLearningJob bad-deploy-op \
    'spec.deploySpec.trigger.condition.operator="greater"'
rejects 'spec.trainSpec.trigger.condition.threshold' 'must be of type number' "$IL" IncrementalLearningJob bad-threshold \
    'spec.trainSpec.trigger.condition.threshold="many"'
rejects 'spec.trainSpec.trigger.condition.operator: Required value' '' "$IL" IncrementalLearningJob no-op \
    '-spec.trainSpec.trigger.condition.operator'
rejects 'spec.trainSpec.trigger.condition.metric' 'at least 1 chars long' "$IL" IncrementalLearningJob empty-metric \
    'spec.trainSpec.trigger.condition.metric=""'
rejects 'spec.trainSpec.trigger.timer.start' 'should match' "$IL" IncrementalLearningJob bad-start \
    'spec.trainSpec.trigger.timer.start="2am"'
rejects 'spec.trainSpec.trigger.timer.end' 'should match' "$IL" IncrementalLearningJob bad-end \
    'spec.trainSpec.trigger.timer.end="24:30"'
rejects 'spec.trainSpec.trigger.timer.start' 'should match' "$IL" IncrementalLearningJob short-start \
    'spec.trainSpec.trigger.timer.start="2:00"'
rejects 'spec.trainSpec.trigger.timer.end: Required value' '' "$IL" IncrementalLearningJob no-end \
    '-spec.trainSpec.trigger.timer.end'
rejects 'spec.trainSpec.trigger.condition.operator' 'Unsupported value: "=>"' "$S/ll-atcii.yaml" LifelongLearningJob ll-bad-op \
    'spec.trainSpec.trigger.condition.operator="=>"' 'spec.trainSpec.trigger.timer={"start":"02:00","end":"24:00"}'
rejects 'spec.trainSpec.trigger.timer.start' 'should match' "$S/ll-atcii.yaml" LifelongLearningJob ll-bad-timer \
    'spec.trainSpec.trigger.timer={"start":"25:00","end":"24:00"}'
accepts il-ops "$IL" IncrementalLearningJob 'spec.trainSpec.trigger.condition.operator="ge"' \
    'spec.deploySpec.trigger.condition.operator="!="' 'spec.trainSpec.trigger.timer={"start":"23:00","end":"01:30"}'

section "validation: datasets and models"
rejects 'spec.dataset.trainProb' 'less than or equal to 1' "$IL" IncrementalLearningJob bad-prob 'spec.dataset.trainProb=1.5'
rejects 'spec.dataset.trainProb' 'greater than or equal to 0' "$S/ll-atcii.yaml" LifelongLearningJob ll-bad-prob \
    'spec.dataset.trainProb=-0.1' 'spec.trainSpec.trigger.timer={"start":"02:00","end":"24:00"}'
DM="$S/datasets-models.yaml"
rejects 'spec.format' 'must be txt or csv' "$DM" Dataset ds-jpg 'spec.format="jpg"'
rejects 'spec.url' 'at least 1 chars long' "$DM" Dataset ds-nourl 'spec.url=""'
rejects 'spec.nodeName: Required value' '' "$DM" Dataset ds-nonode '-spec.nodeName'
accepts ds-upper "$DM" Dataset 'spec.format="CSV"'
rejects 'spec.format' 'non-empty format name' "$DM" Model model-noformat 'spec.format=""'
rejects 'spec.url' 'at least 1 chars long' "$DM" Model model-nourl 'spec.url=""'
rejects 'spec.outputDir' 'at least 1 chars long' "$IL" IncrementalLearningJob no-out 'spec.outputDir=""'

section "validation: workers"
rejects 'spec.edgeWorker.hardExampleMining.name' 'should match' "$S/ji-helmet-detection.yaml" \
    JointInferenceService ji-bad-hem 'spec.edgeWorker.hardExampleMining.name="bad name!"'
rejects 'spec.deploySpec.hardExampleMining.name' 'at least 1 chars long' "$IL" IncrementalLearningJob il-bad-hem \
    'spec.deploySpec.hardExampleMining.name=""'
# a HEM algorithm the worker registers itself (Sedna's ClassFactory) is a valid name
accepts ji-custom-hem "$S/ji-helmet-detection.yaml" JointInferenceService \
    'spec.edgeWorker.hardExampleMining.name="MyCompanyHEM"'
rejects 'spec.cloudWorker.hpa' 'minReplicas must not be greater than maxReplicas' "$S/ji-helmet-detection.yaml" \
    JointInferenceService ji-bad-hpa 'spec.cloudWorker.hpa={"minReplicas":3,"maxReplicas":2}'
accepts ji-hpa "$S/ji-helmet-detection.yaml" JointInferenceService \
    'spec.edgeWorker.hpa={"minReplicas":1,"maxReplicas":3,"metrics":[{"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":50}}}]}'
assert_eq "50" "$(jp ji/ji-hpa '{.spec.edgeWorker.hpa.metrics[0].resource.target.averageUtilization}')" "HPA metrics kept"
FL="$S/fl-surface-defect.yaml"
rejects 'spec.aggregationWorker: Required value' '' "$FL" FederatedLearningJob fl-noagg '-spec.aggregationWorker'
rejects 'spec.trainingWorkers: Required value' '' "$FL" FederatedLearningJob fl-notrain '-spec.trainingWorkers'
rejects 'spec.trainingWorkers' 'should have at least 1 items' "$FL" FederatedLearningJob fl-emptytrain 'spec.trainingWorkers=[]'
rejects 'spec.trainingWorkers[0].dataset: Required value' '' "$FL" FederatedLearningJob fl-nodataset \
    '-spec.trainingWorkers.0.dataset'
rejects 'spec.trainSpec.template.spec.containers: Required value' '' "$IL" IncrementalLearningJob no-containers \
    '-spec.trainSpec.template.spec.containers'
rejects 'spec.evalSpec.template.spec.containers[0].name: Required value' '' "$IL" IncrementalLearningJob no-cname \
    '-spec.evalSpec.template.spec.containers.0.name'
rejects 'spec.deploySpec.template.spec.nodeName' 'must be of type string' "$IL" IncrementalLearningJob bad-node \
    'spec.deploySpec.template.spec.nodeName=7'
rejects 'spec.deploySpec.model.pollPeriodSeconds' 'greater than or equal to 1' "$IL" IncrementalLearningJob bad-poll \
    'spec.deploySpec.model.pollPeriodSeconds=0'
accepts il-nopoll "$IL" IncrementalLearningJob '-spec.deploySpec.model.pollPeriodSeconds'
assert_eq "60" "$(jp il/il-nopoll '{.spec.deploySpec.model.pollPeriodSeconds}')" "pollPeriodSeconds defaults to 60 (as in Sedna)"

"""python3-kubernetes against tandem-apiserver: CRUD (ConfigMaps, Widgets), selectors,
pagination, watch (resume, bookmarks, 410), conflicts, finalizers, garbage collection,
restart persistence, bearer tokens, TLS and Status errors."""

import json
import os
import ssl
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kubernetes import client, watch  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from tandem_test import (ApiServer, ServerTestCase, install_widget_crd,  # noqa: E402
                         load_yaml, run_tests, wait_for)

GROUP, VERSION, PLURAL = "example.tandem.io", "v1", "widgets"


def cm(name, labels=None, data=None, **meta):
    md = {"name": name}
    if labels:
        md["labels"] = labels
    md.update(meta)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data or {"k": "v"}}


def widget(name, **spec):
    spec.setdefault("mode", "fast")
    return {"apiVersion": "%s/%s" % (GROUP, VERSION), "kind": "Widget",
            "metadata": {"name": name}, "spec": spec}


def ensure_ns(core, name):
    try:
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    except ApiException as e:
        if e.status != 409:
            raise


class CrudAndListTest(ServerTestCase):
    """ConfigMap CRUD, label/field selectors and pagination on one server."""

    def test_configmap_crud(self):
        ns = "crud"
        ensure_ns(self.core, ns)
        created = self.core.create_namespaced_config_map(ns, cm("one", {"a": "1"}, {"x": "1"}))
        self.assertEqual(created.metadata.name, "one")
        self.assertEqual(created.metadata.namespace, ns)
        self.assertTrue(created.metadata.uid)
        self.assertTrue(created.metadata.resource_version)
        self.assertIsNotNone(created.metadata.creation_timestamp)

        got = self.core.read_namespaced_config_map("one", ns)
        self.assertEqual(got.data, {"x": "1"})
        self.assertEqual(got.metadata.uid, created.metadata.uid)

        got.data["y"] = "2"
        replaced = self.core.replace_namespaced_config_map("one", ns, got)
        self.assertEqual(replaced.data, {"x": "1", "y": "2"})
        self.assertGreater(int(replaced.metadata.resource_version), int(created.metadata.resource_version))

        patched = self.core.patch_namespaced_config_map("one", ns, {"data": {"x": None, "z": "3"}})
        self.assertEqual(patched.data, {"y": "2", "z": "3"})

        names = [i.metadata.name for i in self.core.list_namespaced_config_map(ns).items]
        self.assertEqual(names, ["one"])
        all_ns = self.core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=%s" % ns)
        self.assertEqual([i.metadata.name for i in all_ns.items], ["one"])

        status = self.core.delete_namespaced_config_map("one", ns)
        self.assertIn(status.status, ("Success", None))
        err = self.assertApiError(404, self.core.read_namespaced_config_map, "one", ns)
        self.assertEqual(err.get("reason"), "NotFound")

    def test_label_selectors(self):
        ns = "sel"
        ensure_ns(self.core, ns)
        objs = {"a": {"env": "prod", "tier": "web"}, "b": {"env": "dev", "tier": "web"},
                "c": {"env": "test"}, "d": {"other": "x"}}
        for name, labels in objs.items():
            self.core.create_namespaced_config_map(ns, cm(name, labels))

        def names(**kw):
            return sorted(i.metadata.name for i in self.core.list_namespaced_config_map(ns, **kw).items)

        self.assertEqual(names(label_selector="env=prod"), ["a"])
        self.assertEqual(names(label_selector="env==prod"), ["a"])
        self.assertEqual(names(label_selector="env!=prod"), ["b", "c", "d"])
        self.assertEqual(names(label_selector="env in (prod,dev)"), ["a", "b"])
        self.assertEqual(names(label_selector="env notin (prod,dev)"), ["c", "d"])
        self.assertEqual(names(label_selector="env"), ["a", "b", "c"])
        self.assertEqual(names(label_selector="!env"), ["d"])
        self.assertEqual(names(label_selector="tier=web,env=dev"), ["b"])
        self.assertEqual(names(label_selector="tier=web,env notin (dev)"), ["a"])
        self.assertEqual(names(label_selector="env=none"), [])
        self.assertEqual(names(field_selector="metadata.name=b"), ["b"])
        self.assertEqual(names(field_selector="metadata.name!=b"), ["a", "c", "d"])
        self.assertEqual(names(field_selector="metadata.name=c", label_selector="env"), ["c"])
        err = self.assertApiError(400, self.core.list_namespaced_config_map, ns, label_selector="env in (prod")
        self.assertEqual(err.get("kind"), "Status")
        self.assertApiError(400, self.core.list_namespaced_config_map, ns, field_selector="data.k=v")

    def test_pagination(self):
        ns = "page"
        ensure_ns(self.core, ns)
        expected = sorted("item-%02d" % i for i in range(25))
        for n in expected:
            self.core.create_namespaced_config_map(ns, cm(n))
        seen, pages, token = [], 0, None
        while True:
            kw = {"limit": 7}
            if token:
                kw["_continue"] = token
            page = self.core.list_namespaced_config_map(ns, **kw)
            pages += 1
            self.assertLessEqual(len(page.items), 7)
            seen.extend(i.metadata.name for i in page.items)
            token = page.metadata._continue
            if not token:
                break
            self.assertLess(pages, 10, "pagination does not terminate")
        self.assertEqual(pages, 4)
        self.assertEqual(len(seen), 25)
        self.assertEqual(sorted(seen), expected, "each object exactly once")
        first = self.core.list_namespaced_config_map(ns, limit=10)
        self.assertEqual(first.metadata.remaining_item_count, 15)
        err = self.assertApiError(400, self.core.list_namespaced_config_map, ns, limit=5, _continue="garbage!")
        self.assertEqual(err.get("kind"), "Status")


class WidgetTest(ServerTestCase):
    """Custom resources through CustomObjectsApi; Status errors on one server."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        install_widget_crd(cls.api)
        cls.co = client.CustomObjectsApi(cls.api)

    def test_widget_crud(self):
        co = self.co
        w = co.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("w1", ratio=0.5))
        self.assertEqual(w["spec"], {"mode": "fast", "ratio": 0.5, "size": 3})
        self.assertEqual(w["metadata"]["generation"], 1)
        got = co.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w1")
        self.assertEqual(got["metadata"]["uid"], w["metadata"]["uid"])

        got["spec"]["size"] = 5
        rep = co.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w1", got)
        self.assertEqual(rep["spec"]["size"], 5)
        self.assertEqual(rep["metadata"]["generation"], 2)

        pat = co.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w1",
                                                {"metadata": {"labels": {"k": "v"}}, "spec": {"ratio": None}})
        self.assertEqual(pat["metadata"]["labels"], {"k": "v"})
        self.assertNotIn("ratio", pat["spec"])

        st = co.patch_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "w1",
                                                      {"status": {"phase": "Done"}, "spec": {"size": 1}})
        self.assertEqual(st["status"]["phase"], "Done")
        self.assertEqual(st["spec"]["size"], 5, "spec change through /status ignored")
        self.assertEqual(st["metadata"]["generation"], 3, "generation: status change does not bump it")

        lst = co.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, label_selector="k=v")
        self.assertEqual(lst["kind"], "WidgetList")
        self.assertEqual([i["metadata"]["name"] for i in lst["items"]], ["w1"])
        lst = co.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        self.assertIn("w1", [i["metadata"]["name"] for i in lst["items"]])

        co.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w1")
        self.assertApiError(404, co.get_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "w1")

    def test_invalid_widget_422_causes(self):
        err = self.assertApiError(422, self.co.create_namespaced_custom_object, GROUP, VERSION, "default",
                                  PLURAL, widget("w-bad", size=11, mode="medium"))
        self.assertEqual(err.get("kind"), "Status")
        self.assertEqual(err.get("reason"), "Invalid")
        self.assertEqual(err.get("code"), 422)
        self.assertEqual(err["details"]["name"], "w-bad")
        self.assertEqual(err["details"]["group"], GROUP)
        self.assertEqual(err["details"]["kind"], "Widget")
        fields = {c.get("field") for c in err["details"].get("causes", [])}
        self.assertIn("spec.size", fields)
        self.assertIn("spec.mode", fields)
        err = self.assertApiError(422, self.co.create_namespaced_custom_object, GROUP, VERSION, "default",
                                  PLURAL, widget("w-cel", size=7))
        causes = err["details"]["causes"]
        self.assertEqual([c["field"] for c in causes], ["spec"])
        self.assertIn("size above 5 needs slow mode", causes[0]["message"])

    def test_not_found_errors(self):
        err = self.assertApiError(404, self.core.read_namespaced_config_map, "missing", "default")
        self.assertEqual(err["kind"], "Status")
        self.assertEqual(err["status"], "Failure")
        self.assertEqual(err["reason"], "NotFound")
        self.assertEqual((err["details"]["name"], err["details"]["kind"]), ("missing", "configmaps"))
        self.assertEqual(err["details"].get("group", ""), "")
        self.assertEqual(err["message"], 'configmaps "missing" not found')
        err = self.assertApiError(404, self.co.get_namespaced_custom_object, GROUP, VERSION, "default",
                                  PLURAL, "missing")
        self.assertEqual(err["details"]["group"], GROUP)
        for path in ("/api/v1/namespaces/default/gizmos", "/apis/nope.example.com/v1/things",
                     "/apis/example.tandem.io/v9/widgets"):
            r = self.server.raw("GET", path)
            self.assertEqual(r.status, 404, path)
            self.assertEqual(r.json().get("kind"), "Status", path)
            self.assertEqual(r.json().get("code"), 404, path)

    def test_malformed_json_400(self):
        r = self.server.raw("POST", "/api/v1/namespaces/default/configmaps", body=b'{"apiVersion": "v1", "kind":')
        self.assertEqual(r.status, 400)
        st = r.json()
        self.assertEqual((st["kind"], st["code"], st["reason"]), ("Status", 400, "BadRequest"))
        r = self.server.raw("POST", "/apis/example.tandem.io/v1/namespaces/default/widgets", body=b"[1,2")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["reason"], "BadRequest")

    def test_unsupported_patch_content_type_415(self):
        self.core.create_namespaced_config_map("default", cm("p415"))
        r = self.server.raw("PATCH", "/api/v1/namespaces/default/configmaps/p415",
                            body=b'{"data":{"a":"b"}}', content_type="text/plain")
        self.assertEqual(r.status, 415)
        st = r.json()
        self.assertEqual((st["kind"], st["code"], st["reason"]), ("Status", 415, "UnsupportedMediaType"))
        # strategic merge patch is for built-in kinds only
        self.co.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("p415"))
        r = self.server.raw("PATCH", "/apis/example.tandem.io/v1/namespaces/default/widgets/p415",
                            body=b'{"spec":{"size":2}}', content_type="application/strategic-merge-patch+json")
        self.assertEqual(r.status, 415)
        self.assertEqual(r.json()["reason"], "UnsupportedMediaType")
        self.assertEqual(self.core.read_namespaced_config_map("p415", "default").data, {"k": "v"})

    def test_duplicate_create_409(self):
        self.core.create_namespaced_config_map("default", cm("dup"))
        err = self.assertApiError(409, self.core.create_namespaced_config_map, "default", cm("dup"))
        self.assertEqual(err["reason"], "AlreadyExists")
        self.assertEqual(err["details"]["name"], "dup")
        self.assertEqual(err["message"], 'configmaps "dup" already exists')
        self.co.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("dup"))
        err = self.assertApiError(409, self.co.create_namespaced_custom_object, GROUP, VERSION, "default",
                                  PLURAL, widget("dup"))
        self.assertEqual(err["reason"], "AlreadyExists")

    def test_stale_resource_version_409(self):
        first = self.core.create_namespaced_config_map("default", cm("stale"))
        fresh = self.core.read_namespaced_config_map("stale", "default")
        fresh.data = {"k": "new"}
        self.core.replace_namespaced_config_map("stale", "default", fresh)
        first.data = {"k": "stale"}
        err = self.assertApiError(409, self.core.replace_namespaced_config_map, "stale", "default", first)
        self.assertEqual(err["reason"], "Conflict")
        self.assertIn("the object has been modified", err["message"])
        self.assertEqual(self.core.read_namespaced_config_map("stale", "default").data, {"k": "new"})
        w = self.co.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("stale"))
        self.co.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "stale", {"spec": {"size": 2}})
        w["spec"]["size"] = 4
        self.assertApiError(409, self.co.replace_namespaced_custom_object, GROUP, VERSION, "default",
                            PLURAL, "stale", w)

    def test_invalid_names_422(self):
        for bad in ("Bad_Name", "UPPER", "-lead", "a" * 254, "dots..twice"):
            err = self.assertApiError(422, self.core.create_namespaced_config_map, "default", cm(bad))
            self.assertEqual(err["reason"], "Invalid", bad)
            self.assertIn("metadata.name", [c.get("field") for c in err["details"].get("causes", [])], bad)
        err = self.assertApiError(422, self.co.create_namespaced_custom_object, GROUP, VERSION, "default",
                                  PLURAL, widget("Not_Valid"))
        self.assertIn("metadata.name", [c.get("field") for c in err["details"].get("causes", [])])
        # a Namespace name must be a DNS-1123 label (no dots)
        err = self.assertApiError(422, self.core.create_namespace,
                                  {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}})
        self.assertEqual(err["reason"], "Invalid")


class WatchTest(ServerTestCase):
    server_args = ("--bookmark-interval", "1")

    def test_watch_from_resource_version(self):
        ns = "watch"
        ensure_ns(self.core, ns)
        self.core.create_namespaced_config_map(ns, cm("before"))
        rv = self.core.list_namespaced_config_map(ns).metadata.resource_version
        self.core.create_namespaced_config_map(ns, cm("w1", data={"n": "1"}))
        self.core.patch_namespaced_config_map("w1", ns, {"data": {"n": "2"}})
        self.core.delete_namespaced_config_map("w1", ns)
        events = []
        w = watch.Watch()
        for ev in w.stream(self.core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=5):
            events.append((ev["type"], ev["object"].metadata.name, (ev["object"].data or {}).get("n"),
                           int(ev["object"].metadata.resource_version)))
            if ev["type"] == "DELETED":
                w.stop()
        self.assertEqual([e[:3] for e in events], [("ADDED", "w1", "1"), ("MODIFIED", "w1", "2"),
                                                   ("DELETED", "w1", "2")])
        rvs = [e[3] for e in events]
        self.assertEqual(rvs, sorted(rvs))
        self.assertGreater(rvs[0], int(rv))

    def test_watch_live_changes(self):
        """Events reach a python watch while the stream is open, not when it ends."""
        ns = "watch-live"
        ensure_ns(self.core, ns)
        rv = self.core.list_namespaced_config_map(ns).metadata.resource_version
        got = []

        def consume():
            w = watch.Watch()
            for ev in w.stream(self.core.list_namespaced_config_map, ns, resource_version=rv,
                               timeout_seconds=8, label_selector="keep=yes"):
                got.append((ev["type"], ev["object"].metadata.name, time.monotonic()))
                if ev["type"] == "DELETED":
                    w.stop()

        t = threading.Thread(target=consume, daemon=True)
        t.start()
        time.sleep(0.3)
        self.core.create_namespaced_config_map(ns, cm("ignored", {"keep": "no"}))
        self.core.create_namespaced_config_map(ns, cm("live", {"keep": "yes"}))
        self.core.patch_namespaced_config_map("live", ns, {"data": {"k": "v2"}})
        self.core.delete_namespaced_config_map("live", ns)
        changed = time.monotonic()
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertEqual([g[:2] for g in got], [("ADDED", "live"), ("MODIFIED", "live"), ("DELETED", "live")])
        delay = got[-1][2] - changed
        self.assertLess(delay, 3.0, "DELETED reached the client %.1fs after the change (watch timeout 8s): "
                                    "events are held until the stream ends" % delay)

    def test_watch_response_is_chunked(self):
        r = self.server.raw("GET", "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1")
        self.assertEqual(r.status, 200)
        headers = {k.lower(): v for k, v in r.headers.items()}
        self.assertEqual(headers.get("transfer-encoding"), "chunked",
                         "watch over HTTP/1.1 must be chunked for urllib3 to stream it; headers: %s" % headers)

    def test_bookmarks(self):
        ns = "watch-bm"
        ensure_ns(self.core, ns)
        rv = self.core.list_namespaced_config_map(ns).metadata.resource_version
        started = time.monotonic()
        resp = self.core.list_namespaced_config_map(ns, watch=True, allow_watch_bookmarks=True,
                                                    resource_version=rv, timeout_seconds=6,
                                                    _preload_content=False)
        bookmark = None
        try:
            for line in watch.watch.iter_resp_lines(resp):
                ev = json.loads(line)
                if ev["type"] == "BOOKMARK":
                    bookmark = ev
                    break
        finally:
            resp.close()
            resp.release_conn()
        self.assertIsNotNone(bookmark, "no BOOKMARK in a 6 s watch with --bookmark-interval 1")
        self.assertLess(time.monotonic() - started, 4.0, "BOOKMARK only arrived when the stream ended")
        self.assertEqual(bookmark["object"]["kind"], "ConfigMap")
        self.assertEqual(bookmark["object"]["apiVersion"], "v1")
        self.assertGreaterEqual(int(bookmark["object"]["metadata"]["resourceVersion"]), int(rv))


class WatchExpiredTest(ServerTestCase):
    server_args = ("--watch-history", "5")

    def test_watch_too_old_410(self):
        ns = "default"
        rv = self.core.list_namespaced_config_map(ns).metadata.resource_version
        for i in range(20):
            self.core.create_namespaced_config_map(ns, cm("old-%d" % i))
        with self.assertRaises(ApiException) as ctx:
            for _ in watch.Watch().stream(self.core.list_namespaced_config_map, ns, resource_version=rv,
                                          timeout_seconds=3):
                pass
        self.assertEqual(ctx.exception.status, 410)
        r = self.server.raw("GET", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=2&resourceVersion=" + rv)
        if r.status == 200:
            ev = json.loads(r.body.split(b"\n")[0])
            self.assertEqual(ev["type"], "ERROR")
            self.assertEqual(ev["object"]["code"], 410)
            self.assertEqual(ev["object"]["reason"], "Expired")
        else:
            self.assertEqual(r.status, 410)
        # a recent resourceVersion still works
        latest = self.core.list_namespaced_config_map(ns).metadata.resource_version
        self.core.create_namespaced_config_map(ns, cm("fresh"))
        seen = []
        w = watch.Watch()
        for ev in w.stream(self.core.list_namespaced_config_map, ns, resource_version=latest, timeout_seconds=3):
            seen.append((ev["type"], ev["object"].metadata.name))
            w.stop()
        self.assertEqual(seen, [("ADDED", "fresh")])


class FinalizerAndGCTest(ServerTestCase):

    def test_finalizer_holds_deletion(self):
        ns = "default"
        self.core.create_namespaced_config_map(ns, cm("fin", finalizers=["example.tandem.io/hold"]))
        self.core.delete_namespaced_config_map("fin", ns)
        obj = self.core.read_namespaced_config_map("fin", ns)
        self.assertIsNotNone(obj.metadata.deletion_timestamp)
        self.assertEqual(obj.metadata.finalizers, ["example.tandem.io/hold"])
        time.sleep(0.5)
        self.assertIsNotNone(self.core.read_namespaced_config_map("fin", ns).metadata.deletion_timestamp)
        self.core.patch_namespaced_config_map("fin", ns, {"metadata": {"finalizers": None}})
        wait_for(lambda: self._gone("fin", ns), 5, what="object gone after finalizer removal")

    def _gone(self, name, ns):
        try:
            self.core.read_namespaced_config_map(name, ns)
            return False
        except ApiException as e:
            return e.status == 404

    def _owner_and_deps(self, prefix, ndeps=2, dep_finalizer=None):
        owner = self.core.create_namespaced_config_map("default", cm(prefix + "-owner"))
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name,
               "uid": owner.metadata.uid, "blockOwnerDeletion": True}
        deps = []
        for i in range(ndeps):
            meta = {"ownerReferences": [ref]}
            if dep_finalizer and i == 0:
                meta["finalizers"] = [dep_finalizer]
            deps.append(self.core.create_namespaced_config_map("default", cm("%s-dep%d" % (prefix, i), **meta))
                        .metadata.name)
        return owner.metadata.name, deps

    def test_background_deletion(self):
        owner, deps = self._owner_and_deps("bg")
        self.core.delete_namespaced_config_map(owner, "default", propagation_policy="Background")
        self.assertTrue(self._gone(owner, "default"), "owner deleted at once with Background")
        wait_for(lambda: all(self._gone(d, "default") for d in deps), 10, what="dependents removed")

    def test_foreground_deletion_waits_for_dependents(self):
        hold = "example.tandem.io/hold"
        owner, deps = self._owner_and_deps("fg", dep_finalizer=hold)
        self.core.delete_namespaced_config_map(owner, "default", propagation_policy="Foreground")
        o = self.core.read_namespaced_config_map(owner, "default")
        self.assertIsNotNone(o.metadata.deletion_timestamp)
        self.assertIn("foregroundDeletion", o.metadata.finalizers or [])
        wait_for(lambda: self._gone(deps[1], "default"), 10, what="free dependent deleted")
        held = self.core.read_namespaced_config_map(deps[0], "default")
        self.assertIsNotNone(held.metadata.deletion_timestamp, "held dependent is being deleted")
        time.sleep(0.5)
        self.assertFalse(self._gone(owner, "default"), "owner must wait for its dependents")
        self.core.patch_namespaced_config_map(deps[0], "default", {"metadata": {"finalizers": None}})
        wait_for(lambda: self._gone(deps[0], "default"), 10, what="held dependent gone")
        wait_for(lambda: self._gone(owner, "default"), 10, what="owner gone after its dependents")

    def test_orphan_deletion(self):
        owner, deps = self._owner_and_deps("or")
        self.core.delete_namespaced_config_map(owner, "default", propagation_policy="Orphan")
        wait_for(lambda: self._gone(owner, "default"), 10, what="owner gone")
        time.sleep(0.5)
        for d in deps:
            obj = self.core.read_namespaced_config_map(d, "default")
            self.assertFalse(obj.metadata.owner_references, d)


class PersistenceTest(unittest.TestCase):

    def test_restart_keeps_objects(self):
        first = ApiServer().start()
        second = None
        try:
            api = first.api_client()
            core = client.CoreV1Api(api)
            ensure_ns(core, "keep")
            c = core.create_namespaced_config_map("keep", cm("kept", {"a": "b"}, {"x": "y"}))
            install_widget_crd(api)
            co = client.CustomObjectsApi(api)
            w = co.create_namespaced_custom_object(GROUP, VERSION, "keep", PLURAL, widget("kw", size=2))
            last_rv = int(core.list_namespaced_config_map("keep").metadata.resource_version)
            api.close()
            first.stop()

            second = ApiServer(data=first.data, workdir=first.dir).start()
            api = second.api_client()
            core = client.CoreV1Api(api)
            co = client.CustomObjectsApi(api)
            c2 = core.read_namespaced_config_map("kept", "keep")
            self.assertEqual(c2.metadata.uid, c.metadata.uid)
            self.assertEqual(c2.data, {"x": "y"})
            self.assertEqual(c2.metadata.resource_version, c.metadata.resource_version)
            w2 = co.get_namespaced_custom_object(GROUP, VERSION, "keep", PLURAL, "kw")
            self.assertEqual(w2["metadata"]["uid"], w["metadata"]["uid"])
            self.assertEqual(w2["spec"], {"mode": "fast", "size": 2})
            groups = [g.name for g in client.ApisApi(api).get_api_versions().groups]
            self.assertIn(GROUP, groups)
            new = core.create_namespaced_config_map("keep", cm("after"))
            self.assertGreater(int(new.metadata.resource_version), last_rv)
            self.assertGreater(int(new.metadata.resource_version), int(w["metadata"]["resourceVersion"]))
            # schema defaults and validation still apply to the restored CRD
            w3 = co.create_namespaced_custom_object(GROUP, VERSION, "keep", PLURAL, widget("kw3"))
            self.assertEqual(w3["spec"]["size"], 3)
            with self.assertRaises(ApiException) as ctx:
                co.create_namespaced_custom_object(GROUP, VERSION, "keep", PLURAL, widget("kw4", size=99))
            self.assertEqual(ctx.exception.status, 422)
            api.close()
            second.stop()
        finally:
            (second or first).cleanup()
            first.cleanup()


class TokenAuthTest(unittest.TestCase):

    def test_token_file(self):
        srv = ApiServer()
        tokens = os.path.join(srv.dir, "tokens.csv")
        with open(tokens, "w") as f:
            f.write("s3cret-token,alice,uid-alice\nother-token,bob,uid-bob\n")
        srv.extra_args = ["--token-file", tokens]
        srv.start()
        try:
            r = srv.raw("GET", "/api/v1/namespaces")
            self.assertEqual(r.status, 401)
            self.assertEqual(r.json()["kind"], "Status")
            self.assertEqual(r.json()["reason"], "Unauthorized")
            self.assertEqual(srv.raw("GET", "/api/v1/namespaces", token="wrong").status, 401)
            self.assertEqual(srv.raw("GET", "/api/v1/namespaces", token="s3cret-token").status, 200)
            self.assertEqual(srv.raw("GET", "/healthz").status, 200)

            # the written kubeconfig carries a valid token
            with srv.api_client() as api:
                names = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
                self.assertIn("default", names)
            with srv.api_client(token="other-token") as api:
                self.assertEqual(client.CoreV1Api(api).read_namespace("default").metadata.name, "default")
            cfg = srv.configuration()
            cfg.api_key = {}
            with client.ApiClient(cfg) as api:
                with self.assertRaises(ApiException) as ctx:
                    client.CoreV1Api(api).list_namespace()
                self.assertEqual(ctx.exception.status, 401)
            with srv.api_client(token="wrong") as api:
                with self.assertRaises(ApiException) as ctx:
                    client.CoreV1Api(api).list_namespace()
                self.assertEqual(ctx.exception.status, 401)
            srv.stop()
        finally:
            srv.cleanup()


class TlsTest(unittest.TestCase):

    def test_tls_with_verification(self):
        srv = ApiServer("--tls")
        srv.extra_args += ["--cert-dir", os.path.join(srv.dir, "pki")]
        srv.start()
        try:
            cfg = srv.configuration()
            self.assertTrue(cfg.host.startswith("https://127.0.0.1:"), cfg.host)
            self.assertTrue(cfg.verify_ssl)
            self.assertTrue(cfg.ssl_ca_cert and os.path.exists(cfg.ssl_ca_cert))
            with open(srv.kubeconfig) as f:
                self.assertIn("certificate-authority-data", f.read())
            with client.ApiClient(cfg) as api:
                names = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
                self.assertIn("default", names)
            # the server certificate is not trusted by a context without the CA
            with self.assertRaises(ssl.SSLError):
                srv.raw("GET", "/version", ssl_context=ssl.create_default_context())
            ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
            self.assertEqual(srv.raw("GET", "/version", ssl_context=ctx).status, 200)
            srv.stop()
        finally:
            srv.cleanup()


if __name__ == "__main__":
    run_tests()

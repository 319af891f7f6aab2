"""Python helpers for the conformance tests: run a real tandem-apiserver on a free loopback
port in a temp dir, build python-kubernetes clients from the kubeconfig it writes, make raw
HTTP requests, and stop it with SIGTERM, failing if it does not exit 0.

run_tests() runs a module's unittest cases and writes "passed failed" to $CONFORMANCE_RESULT.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

from kubernetes import client, config

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TESTDATA = os.path.join(HERE, "testdata")
_build = os.environ.get("BUILD", "build")
BUILD = _build if os.path.isabs(_build) else os.path.join(ROOT, _build)
APISERVER = os.environ.get("APISERVER", os.path.join(BUILD, "bin", "tandem-apiserver"))
TMP_ROOT = os.environ.get("CONFORMANCE_TMP") or tempfile.gettempdir()

# Every server started by this process, so a crashed test cannot leak one.
_live_servers = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, interval=0.1, what="condition"):
    """Polls pred() until it returns a truthy value; returns it, or raises AssertionError."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)


class RawResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


class ApiServer:
    """One tandem-apiserver process. data: path of an existing sqlite file to reuse."""

    def __init__(self, *extra_args, data=None, workdir=None):
        self.extra_args = list(extra_args)
        self.owns_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="tandem-py.", dir=TMP_ROOT)
        self.data = data or os.path.join(self.dir, "data.db")
        self.tls = "--tls" in self.extra_args
        self.proc = None
        self.port = None
        self.kubeconfig = None
        self.log_path = None

    def start(self, timeout=15.0):
        for attempt in range(3):
            self.port = free_port()
            n = len(os.listdir(self.dir))
            self.kubeconfig = os.path.join(self.dir, "kubeconfig.%d" % n)
            self.log_path = os.path.join(self.dir, "server.%d.log" % n)
            args = [APISERVER, "--listen", "127.0.0.1:%d" % self.port, "--data", self.data,
                    "--write-kubeconfig", self.kubeconfig] + self.extra_args
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
            _live_servers.append(self)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if os.path.exists(self.kubeconfig) and os.path.getsize(self.kubeconfig) > 0:
                    try:
                        if self.raw("GET", "/readyz", token=None, timeout=2).status == 200:
                            return self
                    except (OSError, http.client.HTTPException):
                        pass
                time.sleep(0.1)
            if self.proc.poll() is None:
                break
            _live_servers.remove(self)
            if "in use" not in self.log():
                break
        raise AssertionError("tandem-apiserver did not come up (%s):\n%s" % (args, self.log()))

    def log(self, tail=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-tail:])
        except OSError:
            return ""

    def stop(self, timeout=10.0):
        """SIGTERM then wait; raises AssertionError unless the server exits 0 in time."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if self in _live_servers:
            _live_servers.remove(self)
        if proc.poll() is not None:
            raise AssertionError("tandem-apiserver died before stop (exit %s):\n%s"
                                 % (proc.returncode, self.log()))
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("tandem-apiserver did not exit within %.0fs of SIGTERM:\n%s"
                                 % (timeout, self.log()))
        if rc != 0:
            raise AssertionError("tandem-apiserver exited %d on SIGTERM:\n%s" % (rc, self.log()))

    def cleanup(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        if self.owns_dir and os.environ.get("KEEP_TMP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- clients -------------------------------------------------------------------

    def configuration(self):
        """A kubernetes.client.Configuration loaded from the written kubeconfig."""
        cfg = client.Configuration()
        config.load_kube_config(config_file=self.kubeconfig, client_configuration=cfg)
        return cfg

    def api_client(self, token=None):
        cfg = self.configuration()
        if token is not None:
            cfg.api_key = {"authorization": "Bearer " + token}
        return client.ApiClient(cfg)

    @property
    def base_url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def raw(self, method, path, body=None, content_type="application/json", token=None,
            headers=None, timeout=20, ssl_context=None):
        """One HTTP request; body may be bytes, str or a JSON-able object."""
        if self.tls:
            ctx = ssl_context or ssl._create_unverified_context()
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        hdrs = {"Accept": "application/json"}
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            hdrs["Content-Type"] = content_type
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return RawResponse(resp.status, dict(resp.getheaders()), resp.read())
        finally:
            conn.close()


class ServerTestCase(unittest.TestCase):
    """A TestCase class sharing one server; server_args are its extra flags."""

    server_args = ()
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = ApiServer(*cls.server_args).start()
        cls.api = cls.server.api_client()
        cls.core = client.CoreV1Api(cls.api)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.api.close()
            cls.server.stop()
        finally:
            cls.server.cleanup()

    def assertApiError(self, status, fn, *args, **kwargs):
        """fn(*args) must raise ApiException with HTTP status; returns the decoded Status."""
        with self.assertRaises(client.exceptions.ApiException) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.status, status, "body: %s" % cm.exception.body)
        try:
            return json.loads(cm.exception.body)
        except (TypeError, ValueError):
            return {}


def load_yaml(name):
    import yaml
    with open(os.path.join(TESTDATA, name)) as f:
        return yaml.safe_load(f)


def install_widget_crd(api_client, timeout=15.0):
    """Creates the Widget CRD and waits for Established."""
    ext = client.ApiextensionsV1Api(api_client)
    ext.create_custom_resource_definition(load_yaml("crd-widgets.yaml"))

    def established():
        crd = ext.read_custom_resource_definition("widgets.example.tandem.io")
        return any(c.type == "Established" and c.status == "True"
                   for c in (crd.status.conditions or []))
    wait_for(established, timeout, what="CRD Established")


def run_tests(module_name="__main__"):
    """Runs the module's tests; writes "passed failed" to $CONFORMANCE_RESULT; exits."""
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[module_name])
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2)
    result = None
    try:
        result = runner.run(suite)
    finally:
        for s in list(_live_servers):
            try:
                s.stop()
            except AssertionError as e:
                print("leftover server: %s" % e)
            s.cleanup()
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - len(result.failures) - len(result.errors) - len(result.skipped)
    # setUpClass/tearDownClass errors are not tests: count them against the file.
    passed = max(passed, 0)
    name = os.path.splitext(os.path.basename(sys.modules[module_name].__file__))[0]
    print("%s: %d passed, %d failed" % (name, passed, failed))
    out = os.environ.get("CONFORMANCE_RESULT")
    if out:
        with open(out, "w") as f:
            f.write("%d %d\n" % (passed, failed))
    sys.exit(1 if failed else 0)

#!/usr/bin/python3
"""End-to-end test of totemkvd with a third-party client: python3-etcd3
(Debian's python3-etcd3, the etcd3 package from PyPI) against 3 real
totemkvd processes on loopback (free ports, a fresh cluster key and data
dirs in a temp dir).

    python_etcd3_test.py --server BIN [--keygen BIN] [--groups kv,watch,lease]
                         [--require-implemented] [--keep-dir]

(--keygen: totem-keygen, default: beside the server binary.)

Groups: kv (put/get at different nodes, get_prefix, delete, transaction,
members, status), watch, lease. A Watch or Lease service that answers
UNIMPLEMENTED makes its tests skip, with a message saying so, unless
--require-implemented is given (then they fail). Exit codes: 0 all ran and
passed, 1 a failure, 77 nothing failed but a test was skipped because a
service is UNIMPLEMENTED (ctest SKIP_RETURN_CODE), 2 bad arguments.

Debian's python3-protobuf (3.21) loads the etcd3 package's generated code
without complaint; with a newer protobuf that refuses it ("Descriptors
cannot be created directly"), PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python
is the documented workaround, so it is set before etcd3 is imported unless
the environment already chose an implementation.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

import grpc  # noqa: E402  (after the environment is set)

try:
    import etcd3  # noqa: E402
except ImportError as e:  # pragma: no cover
    print("python_etcd3_test: cannot import etcd3 (Debian package python3-etcd3;"
          " ./scripts/setup.sh installs it): %s" % e, file=sys.stderr)
    sys.exit(1)

NODES = 3
SERVER_BIN = None
KEYGEN_BIN = None
GROUPS = {"kv", "watch", "lease"}
REQUIRE_IMPLEMENTED = False
KEEP_DIR = False
UNIMPLEMENTED_SKIPS = []  # names of tests skipped for an UNIMPLEMENTED service


def _quiet_closed_watch_threads(args):
    """etcd3 0.12's watch thread re-opens its stream forever; once the
    client is closed that fails with "Channel closed" and the thread dies.
    That is the library's way of ending, not a test failure: stay quiet."""
    if (args.thread is not None and args.thread.name.startswith("etcd3_watch_")
            and isinstance(args.exc_value, ValueError)
            and "Channel closed" in str(args.exc_value)):
        return
    threading.__excepthook__(args)


threading.excepthook = _quiet_closed_watch_threads


def wait_for(condition, timeout_s, interval_s=0.05):
    """Polls condition() until it is truthy or timeout_s passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            return result
        time.sleep(interval_s)


def free_ports(n, kind):
    """n distinct ports on 127.0.0.1 that were free a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, kind)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Cluster:
    """NODES totemkvd processes named n1..nN with Totem node ids 1..N."""

    def __init__(self, server_bin):
        self.bin = server_bin
        self.dir = tempfile.mkdtemp(prefix="python_etcd3_test.")
        self.client_ports = free_ports(NODES, socket.SOCK_STREAM)
        self.udp_ports = free_ports(NODES, socket.SOCK_DGRAM)
        self.key = os.path.join(self.dir, "cluster.key")
        subprocess.run([KEYGEN_BIN, self.key], check=True, stdout=subprocess.DEVNULL)
        self.procs = []
        self.logs = []

    def start(self):
        cluster = ",".join("n%d=%d@127.0.0.1:%d" % (i + 1, i + 1, p)
                           for i, p in enumerate(self.udp_ports))
        urls = ",".join("n%d=http://127.0.0.1:%d" % (i + 1, p)
                        for i, p in enumerate(self.client_ports))
        for i in range(NODES):
            name = "n%d" % (i + 1)
            log = open(os.path.join(self.dir, name + ".log"), "wb")
            self.logs.append(log)
            self.procs.append(subprocess.Popen(
                [self.bin, "--name", name, "--data-dir", os.path.join(self.dir, name),
                 "--listen-client-urls", "http://127.0.0.1:%d" % self.client_ports[i],
                 "--initial-cluster", cluster, "--initial-cluster-client-urls", urls,
                 "--key-file", self.key],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT))

    def ready(self):
        """Every node answers Status and all report one Totem configuration
        (leader = its representative, raft_term = its ring sequence)."""
        rings = set()
        for i in range(NODES):
            if self.procs[i].poll() is not None:
                raise RuntimeError("n%d exited with code %s:\n%s" %
                                   (i + 1, self.procs[i].returncode, self.log_text(i)))
            c = self.client(i, timeout=1)
            try:
                resp = c.maintenancestub.Status(etcd3.etcdrpc.StatusRequest(), 1)
            except grpc.RpcError:
                return False
            finally:
                c.close()
            rings.add((resp.leader, resp.header.raft_term))
        return len(rings) == 1 and (0, 0) not in rings

    def client(self, i, timeout=10):
        return etcd3.client(host="127.0.0.1", port=self.client_ports[i], timeout=timeout)

    def log_text(self, i):
        try:
            with open(os.path.join(self.dir, "n%d.log" % (i + 1)), "r",
                      errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in self.logs:
            log.close()
        if KEEP_DIR:
            print("python_etcd3_test: cluster dir kept: %s" % self.dir, file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


CLUSTER = None


def setUpModule():  # noqa: N802 (unittest's name)
    global CLUSTER
    CLUSTER = Cluster(SERVER_BIN)
    CLUSTER.start()
    if not wait_for(CLUSTER.ready, 30):
        logs = "\n".join("---- n%d\n%s" % (i + 1, CLUSTER.log_text(i)) for i in range(NODES))
        CLUSTER.stop()
        raise RuntimeError("the cluster did not form one ring within 30 s\n" + logs)


def tearDownModule():  # noqa: N802
    if CLUSTER is not None:
        CLUSTER.stop()


class Etcd3TestCase(unittest.TestCase):
    def setUp(self):
        self.clients = [CLUSTER.client(i) for i in range(NODES)]

    def tearDown(self):
        for c in self.clients:
            c.close()

    def skip_if_unimplemented(self, err, service):
        """Turns an UNIMPLEMENTED answer into a clear skip (or failure)."""
        if isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.UNIMPLEMENTED:
            msg = "totemkvd's %s service answers UNIMPLEMENTED (%s)" % (service, err.details())
            if REQUIRE_IMPLEMENTED:
                self.fail(msg)
            UNIMPLEMENTED_SKIPS.append(self.id())
            self.skipTest(msg)
        raise err


class KvTest(Etcd3TestCase):
    def setUp(self):
        if "kv" not in GROUPS:
            self.skipTest("group kv not selected")
        super().setUp()

    def test_put_at_one_node_get_at_every_other(self):
        a, b, c = self.clients
        a.put("kv/greeting", "hello")
        for client in (b, c):
            value, meta = client.get("kv/greeting")
            self.assertEqual(value, b"hello")
            self.assertEqual(meta.version, 1)
        b.put("kv/greeting", "again")
        value, meta = c.get("kv/greeting")
        self.assertEqual(value, b"again")
        self.assertEqual(meta.version, 2)
        self.assertGreater(meta.mod_revision, meta.create_revision)
        self.assertEqual(a.get("kv/absent"), (None, None))

    def test_get_prefix_and_delete(self):
        a, b, c = self.clients
        for k in ("p/1", "p/2", "p/3", "q/1"):
            a.put(k, "v" + k)
        got = sorted((m.key, v) for v, m in b.get_prefix("p/"))
        self.assertEqual(got, [(b"p/1", b"vp/1"), (b"p/2", b"vp/2"), (b"p/3", b"vp/3")])
        self.assertTrue(c.delete("p/2"))
        self.assertFalse(c.delete("p/2"))  # nothing left to delete
        self.assertEqual(sorted(m.key for _, m in a.get_prefix("p/")), [b"p/1", b"p/3"])
        self.assertTrue(b.delete_prefix("p/"))
        self.assertEqual(list(a.get_prefix("p/")), [])
        self.assertEqual(a.get("q/1")[0], b"vq/1")

    def test_transaction_takes_the_branch_its_compares_pick(self):
        a, b, _ = self.clients
        a.put("txn/k", "1")
        t = b.transactions
        ok, responses = b.transaction(
            compare=[t.value("txn/k") == "1"],
            success=[t.put("txn/k", "2"), t.put("txn/branch", "success")],
            failure=[t.put("txn/branch", "failure")])
        self.assertTrue(ok)
        self.assertEqual(len(responses), 2)
        self.assertEqual(a.get("txn/k")[0], b"2")
        ok, responses = a.transaction(
            compare=[t.value("txn/k") == "1"],
            success=[t.put("txn/branch", "success")],
            failure=[t.get("txn/k")])
        self.assertFalse(ok)
        (value, _), = responses[0]  # the failure branch's get
        self.assertEqual(value, b"2")
        self.assertEqual(b.get("txn/branch")[0], b"success")
        ok, _ = a.transaction(compare=[t.version("txn/k") == 2], success=[t.delete("txn/k")],
                              failure=[])
        self.assertTrue(ok)
        self.assertEqual(b.get("txn/k"), (None, None))

    def test_members_and_status(self):
        members = sorted(self.clients[1].members, key=lambda m: m.name)
        self.assertEqual([m.name for m in members], ["n1", "n2", "n3"])
        for m, port in zip(members, CLUSTER.client_ports):
            self.assertIn("http://127.0.0.1:%d" % port, list(m.client_urls))
        ids = {m.id for m in members}
        self.assertEqual(len(ids), NODES)
        for c in self.clients:
            status = c.status()
            self.assertTrue(status.version)
            self.assertIsNotNone(status.leader, "Status.leader names no member")
            self.assertIn(status.leader.id, ids)
            self.assertGreater(status.raft_term, 0)


class WatchTest(Etcd3TestCase):
    def setUp(self):
        if "watch" not in GROUPS:
            self.skipTest("group watch not selected")
        super().setUp()

    def test_watch_at_one_node_sees_puts_and_deletes_at_another(self):
        a, b, _ = self.clients
        seen = []
        got_all = threading.Event()

        def on_response(resp):
            if isinstance(resp, Exception):
                seen.append(resp)
                got_all.set()
                return
            for ev in resp.events:
                seen.append(ev)
            if len([e for e in seen if not isinstance(e, Exception)]) >= 3:
                got_all.set()

        try:
            watch_id = a.add_watch_prefix_callback("w/", on_response)
        except grpc.RpcError as err:
            self.skip_if_unimplemented(err, "Watch")
        try:
            b.put("w/1", "one")
            b.put("w/2", "two")
            b.delete("w/1")
            self.assertTrue(got_all.wait(10), "watch saw only %r" % seen)
        finally:
            a.cancel_watch(watch_id)
        errors = [e for e in seen if isinstance(e, Exception)]
        self.assertEqual(errors, [])
        self.assertIsInstance(seen[0], etcd3.events.PutEvent)
        self.assertEqual((seen[0].key, seen[0].value), (b"w/1", b"one"))
        self.assertIsInstance(seen[1], etcd3.events.PutEvent)
        self.assertEqual(seen[1].key, b"w/2")
        self.assertIsInstance(seen[2], etcd3.events.DeleteEvent)
        self.assertEqual(seen[2].key, b"w/1")
        self.assertLess(seen[0].mod_revision, seen[1].mod_revision)

    def test_watch_once_from_a_past_revision(self):
        a, b, _ = self.clients
        resp = b.put("w/past", "x")
        rev = resp.header.revision
        try:
            ev = a.watch_once("w/past", timeout=10, start_revision=rev)
        except grpc.RpcError as err:
            self.skip_if_unimplemented(err, "Watch")
        self.assertEqual((ev.key, ev.value), (b"w/past", b"x"))
        self.assertEqual(ev.mod_revision, rev)


class LeaseTest(Etcd3TestCase):
    def setUp(self):
        if "lease" not in GROUPS:
            self.skipTest("group lease not selected")
        super().setUp()

    def test_lease_grant_attach_refresh_revoke(self):
        a, b, c = self.clients
        try:
            lease = a.lease(30)
        except grpc.RpcError as err:
            self.skip_if_unimplemented(err, "Lease")
        self.assertGreater(lease.id, 0)
        b.put("l/k", "v", lease=lease)
        _, meta = c.get("l/k")
        self.assertEqual(meta.lease_id, lease.id)
        remaining = wait_for(lambda: lease.remaining_ttl if lease.remaining_ttl > 0 else None, 5)
        self.assertIsNotNone(remaining)
        self.assertLessEqual(remaining, 30)
        self.assertEqual(sorted(lease.keys), [b"l/k"])
        refreshed = lease.refresh()
        self.assertGreater(refreshed[0].TTL, 0)
        lease.revoke()
        self.assertEqual(c.get("l/k"), (None, None))  # revoking deletes its keys

    def test_short_lease_expires_and_takes_its_keys(self):
        a, b, _ = self.clients
        try:
            lease = a.lease(1)
        except grpc.RpcError as err:
            self.skip_if_unimplemented(err, "Lease")
        a.put("l/short", "v", lease=lease)
        gone = wait_for(lambda: b.get("l/short") == (None, None), 10, interval_s=0.1)
        self.assertTrue(gone, "a key on a 1 s lease is still there after 10 s")


def main():
    global SERVER_BIN, KEYGEN_BIN, GROUPS, REQUIRE_IMPLEMENTED, KEEP_DIR
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("TOTEMKVD_BIN"),
                        help="totemkvd binary (default $TOTEMKVD_BIN)")
    parser.add_argument("--keygen", help="totem-keygen (default: beside --server)")
    parser.add_argument("--groups", default="kv,watch,lease")
    parser.add_argument("--require-implemented", action="store_true")
    parser.add_argument("--keep-dir", action="store_true")
    args, rest = parser.parse_known_args()
    if not args.server or not os.access(args.server, os.X_OK):
        parser.error("--server must name the totemkvd binary (got %r)" % args.server)
    keygen = args.keygen or os.path.join(os.path.dirname(args.server), "totem-keygen")
    if not os.access(keygen, os.X_OK):
        parser.error("--keygen must name the totem-keygen binary (got %r)" % keygen)
    groups = {g for g in args.groups.split(",") if g}
    if not groups or not groups <= {"kv", "watch", "lease"}:
        parser.error("--groups takes kv, watch, lease (got %r)" % args.groups)
    SERVER_BIN = args.server
    KEYGEN_BIN = keygen
    GROUPS = groups
    REQUIRE_IMPLEMENTED = args.require_implemented
    KEEP_DIR = args.keep_dir
    program = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
    result = program.result
    if not result.wasSuccessful():
        return 1
    if UNIMPLEMENTED_SKIPS:
        print("python_etcd3_test: SKIPPED because a service answers UNIMPLEMENTED: %s"
              % ", ".join(UNIMPLEMENTED_SKIPS), file=sys.stderr)
        return 77
    if result.testsRun == len(result.skipped):
        print("python_etcd3_test: no test ran", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

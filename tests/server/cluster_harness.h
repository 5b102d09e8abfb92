// A cluster of real totemkvd processes on loopback for end-to-end tests:
// free UDP/TCP ports, a fresh cluster key and data dirs per test, logs per
// node, and helpers to drive it with etcdctl or the etcd gRPC stubs. Every
// wait has a deadline. Needs TOTEMKVD_BIN defined to the server binary.
#ifndef TOTEMKV_TESTS_SERVER_CLUSTER_HARNESS_H_
#define TOTEMKV_TESTS_SERVER_CLUSTER_HARNESS_H_

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../integration/test_util.h"
#include "etcd/rpc.grpc.pb.h"
#include "totem/node.h"

namespace totemkv::testing {

using std::chrono::milliseconds;
using std::chrono::seconds;
using totem::testing::Child;
using totem::testing::FreeUdpPorts;
using totem::testing::ReadFile;
using totem::testing::TempDir;
using totem::testing::WaitFor;

inline constexpr const char* kServerBin = TOTEMKVD_BIN;

inline uint16_t FreeTcpPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// A cluster of `n` totemkvd processes named n1..nN with node ids 1..N.
class Cluster {
 public:
  explicit Cluster(size_t n) : n_(n), udp_(FreeUdpPorts(n)) {
    for (size_t i = 0; i < n; ++i) {
      uint16_t p = 0;
      do {
        p = FreeTcpPort();
      } while (p != 0 && std::find(tcp_.begin(), tcp_.end(), p) != tcp_.end());
      tcp_.push_back(p);
    }
    key_ = dir_.path() + "/cluster.key";
    children_.resize(n);
  }

  bool Init() {
    if (udp_.size() != n_ || dir_.path().empty()) return false;
    for (uint16_t p : tcp_) {
      if (p == 0) return false;
    }
    return totem::WriteKeyFile(key_).ok();
  }

  // Before Start: node i is on the rings rings[i] (Totem multiple rings:
  // one UDP port and --initial-cluster entry ".../RING" per ring; a node on
  // two rings is a gateway). Not called: every node on one ring, no suffix.
  bool SetRings(std::vector<std::vector<uint32_t>> rings) {
    if (rings.size() != n_) return false;
    ring_ports_.assign(n_, {});
    std::vector<uint16_t> used = udp_;
    for (size_t i = 0; i < n_; ++i) {
      if (rings[i].empty()) return false;
      ring_ports_[i].push_back(udp_[i]);
      while (ring_ports_[i].size() < rings[i].size()) {
        const uint16_t p = totem::testing::FreeUdpPort();
        if (p == 0) return false;
        if (std::find(used.begin(), used.end(), p) != used.end()) continue;
        used.push_back(p);
        ring_ports_[i].push_back(p);
      }
    }
    rings_ = std::move(rings);
    return true;
  }

  void Start(size_t i) {
    std::string cluster, client_urls;
    for (size_t j = 0; j < n_; ++j) {
      const std::string name = "n" + std::to_string(j + 1);
      if (rings_.empty()) {
        cluster += (j ? "," : "") + name + "=" + std::to_string(j + 1) +
                   "@127.0.0.1:" + std::to_string(udp_[j]);
      }
      for (size_t k = 0; !rings_.empty() && k < rings_[j].size(); ++k) {
        cluster += (cluster.empty() ? "" : ",") + name + "=" + std::to_string(j + 1) +
                   "@127.0.0.1:" + std::to_string(ring_ports_[j][k]) + "/" +
                   std::to_string(rings_[j][k]);
      }
      client_urls += (j ? "," : "") + name + "=" + Url(j);
    }
    const std::string name = "n" + std::to_string(i + 1);
    std::vector<std::string> args{kServerBin,
                                  "--name",
                                  name,
                                  "--data-dir",
                                  dir_.path() + "/" + name,
                                  "--listen-client-urls",
                                  Url(i),
                                  "--initial-cluster",
                                  cluster,
                                  "--initial-cluster-client-urls",
                                  client_urls,
                                  "--key-file",
                                  key_};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    children_[i] = std::make_unique<Child>(args, Log(i));
  }
  // Starts node i with `extra` flags appended (e.g. --sync=false).
  void Start(size_t i, const std::vector<std::string>& extra) {
    extra_args_ = extra;
    Start(i);
    extra_args_.clear();
  }

  // Every running node serves clients and its last regular configuration
  // has all `members`.
  bool WaitForRing(const std::string& members, milliseconds timeout) {
    return WaitFor(
        [&] {
          for (size_t i = 0; i < n_; ++i) {
            if (children_[i] == nullptr) continue;
            const std::string log = ReadFile(Log(i));
            // The gRPC port opens after the node joins the ring.
            if (log.find("event=listening kind=client") == std::string::npos) return false;
            const size_t pos = log.rfind("event=ring_configuration kind=regular");
            if (pos == std::string::npos) return false;
            const size_t eol = log.find('\n', pos);
            if (log.substr(pos, eol - pos).find(" members=" + members + " ") == std::string::npos) {
              return false;
            }
          }
          return true;
        },
        timeout);
  }

  void Kill(size_t i) { children_[i].reset(); }  // SIGKILL (Child's destructor)

  std::string Url(size_t i) const { return scheme_ + "://127.0.0.1:" + std::to_string(tcp_[i]); }
  // "https" before Start: the nodes listen with TLS (the test adds the
  // --client-cert-file / --client-key-file flags).
  void set_scheme(std::string scheme) { scheme_ = std::move(scheme); }
  std::string Endpoint(size_t i) const { return "127.0.0.1:" + std::to_string(tcp_[i]); }
  std::string Log(size_t i) const { return dir_.path() + "/n" + std::to_string(i + 1) + ".log"; }
  std::string Logs() const {
    std::string s;
    for (size_t i = 0; i < n_; ++i) s += "---- n" + std::to_string(i + 1) + "\n" + ReadFile(Log(i));
    return s;
  }
  const std::string& dir() const { return dir_.path(); }

  std::unique_ptr<etcdserverpb::KV::Stub> Kv(size_t i) const {
    return etcdserverpb::KV::NewStub(
        grpc::CreateChannel(Endpoint(i), grpc::InsecureChannelCredentials()));
  }

 private:
  TempDir dir_;
  size_t n_;
  std::vector<uint16_t> udp_;
  std::vector<uint16_t> tcp_;
  std::string key_;
  std::vector<std::unique_ptr<Child>> children_;
  std::vector<std::string> extra_args_;
  std::string scheme_ = "http";
  std::vector<std::vector<uint32_t>> rings_;       // SetRings; empty: one ring
  std::vector<std::vector<uint16_t>> ring_ports_;  // per node, per entry of rings_[i]
};

// Runs etcdctl (API v3) against `endpoint` with `args`, optionally feeding
// `stdin_text`; returns {exit code, combined output}.
inline std::pair<int, std::string> Etcdctl(const Cluster& c, const std::string& endpoint,
                                           const std::string& args,
                                           const std::string& stdin_text = "") {
  static std::atomic<int> counter{0};
  const std::string base = c.dir() + "/etcdctl" + std::to_string(counter++);
  std::string cmd =
      "ETCDCTL_API=3 etcdctl --dial-timeout=5s --command-timeout=10s --endpoints=" + endpoint +
      " " + args;
  if (!stdin_text.empty()) {
    {
      std::ofstream in(base + ".in");
      in << stdin_text;
    }
    cmd += " < " + base + ".in";
  }
  Child child({"/bin/sh", "-c", cmd}, base + ".out");
  const std::optional<int> rc = child.Wait(seconds(30));
  return {rc.value_or(-1), ReadFile(base + ".out")};
}

inline grpc::Status Put(etcdserverpb::KV::Stub& kv, const std::string& key,
                        const std::string& value, etcdserverpb::PutResponse* resp,
                        milliseconds timeout = milliseconds(10000)) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  etcdserverpb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  return kv.Put(&ctx, req, resp);
}

// Every key with `prefix`, as key -> (value, mod_revision), read at `kv`.
inline grpc::Status RangePrefix(etcdserverpb::KV::Stub& kv, const std::string& prefix,
                                bool serializable,
                                std::map<std::string, std::pair<std::string, int64_t>>* out,
                                int64_t* header_revision = nullptr) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
  etcdserverpb::RangeRequest req;
  req.set_key(prefix);
  std::string end = prefix;
  end.back() = static_cast<char>(end.back() + 1);
  req.set_range_end(end);
  req.set_serializable(serializable);
  etcdserverpb::RangeResponse resp;
  grpc::Status s = kv.Range(&ctx, req, &resp);
  out->clear();
  for (const auto& kvp : resp.kvs()) (*out)[kvp.key()] = {kvp.value(), kvp.mod_revision()};
  if (header_revision != nullptr) *header_revision = resp.header().revision();
  return s;
}

// A test fixture owning a 3-node cluster: StartCluster() starts every node
// (with `extra` flags) and waits until all serve clients on one ring; a
// failing test prints every node's log.
class ThreeNodeClusterTest : public ::testing::Test {
 protected:
  void StartCluster(const std::vector<std::string>& extra = {}) {
    ASSERT_TRUE(cluster_.Init());
    for (size_t i = 0; i < 3; ++i) cluster_.Start(i, extra);
    ASSERT_TRUE(cluster_.WaitForRing("1,2,3", seconds(30))) << cluster_.Logs();
  }
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "%s\n", cluster_.Logs().c_str());
  }
  Cluster cluster_{3};
};

}  // namespace totemkv::testing

#endif  // TOTEMKV_TESTS_SERVER_CLUSTER_HARNESS_H_

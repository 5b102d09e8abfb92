// The totemkvd fault test (issue 5, "Real processes"): five real totemkvd
// processes, each in a network namespace of its own (NetLab,
// tests/integration/net_lab.h: a private bridge, 10.77.0.x addresses that
// exist only inside the namespaces), Totem over unicast UDP. Four clients
// write unique keys through every node and fail over to the next node on
// any error, recording every acknowledged put. Seeded rounds of faults:
// kill -9 of a random node and restart on its data dir, a 3|2 partition
// (iptables DROP of UDP between the sides, inside the namespaces), and one
// round where the victim's data dir is wiped before the restart. While a
// partition lasts, the minority side must refuse writes (UNAVAILABLE, "no
// quorum") and still serve serializable reads. Afterwards,
// with deadlines: all five nodes form one ring and serve linearizable
// reads, every acknowledged put is on every node (serializable read after a
// linearizable one on that node), every node's store checksum
// (Admin.GetStoreChecksum) is the same, and so is etcd's Maintenance.HashKV
// at one revision.
//
// Clients reach the nodes over Unix sockets (unix:// listen URLs): by design
// no address of the namespaces is reachable from the test's own namespace.
// Environment: TOTEMKV_FAULT_SEED=N reruns a seed (the seed is printed),
// TOTEMKV_FAULT_ROUNDS=N changes the number of fault rounds (default 8),
// TOTEMKV_SKIP_NETNS=1 skips when the namespaces cannot be built,
// TOTEMKV_KEEP_TEST_DIR=1 keeps the logs and data dirs.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../integration/net_lab.h"
#include "../integration/test_util.h"
#include "admin/admin.grpc.pb.h"
#include "etcd/rpc.grpc.pb.h"
#include "netns_cluster.h"

namespace totemkv::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using totem::testing::Child;
using totem::testing::FreeUdpPorts;
using totem::testing::NetLab;
using totem::testing::ReadFile;
using totem::testing::RunCommand;
using totem::testing::TempDir;
using totem::testing::WaitFor;
using Clock = std::chrono::steady_clock;

constexpr const char* kServerBin = TOTEMKVD_BIN;
constexpr const char* kKeygenBin = TOTEM_KEYGEN_BIN;
constexpr size_t kNodes = 5;
constexpr char kPrefix[] = "fault/";

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, v);
  return buf;
}

std::string Nodes(const std::vector<size_t>& nodes) {
  std::string s;
  for (size_t i : nodes) s += (s.empty() ? "" : ",") + std::to_string(i + 1);
  return "{" + s + "}";
}

// Five totemkvd processes in the lab's namespaces, node i (0-based) named
// n<i+1> with Totem id i + 1. Every incarnation of a node logs to its own
// file; the data dir survives restarts unless wiped.
class FaultCluster {
 public:
  FaultCluster(const TempDir& dir, const NetLab& lab)
      : dir_(dir.path()), lab_(lab), children_(kNodes), incarnation_(kNodes, 0) {}

  bool Init(std::string* error) {
    key_ = dir_ + "/cluster.key";
    if (RunCommand({kKeygenBin, key_}, dir_ + "/keygen.log") != 0) {
      *error = "totem-keygen failed: " + ReadFile(dir_ + "/keygen.log");
      return false;
    }
    // Every node has a namespace of its own, so any port is free in it;
    // take kernel-chosen ones anyway rather than hard-code a number.
    ports_ = FreeUdpPorts(kNodes);
    if (ports_.size() != kNodes) {
      *error = "no free UDP ports";
      return false;
    }
    for (size_t i = 0; i < kNodes; ++i) channels_.push_back(UnixSocketChannel(SocketPath(i)));
    return true;
  }

  void Start(size_t i) {
    ++incarnation_[i];
    std::string cluster, client_urls;
    for (size_t j = 0; j < kNodes; ++j) {
      cluster += (j ? "," : "") + Name(j) + "=" + std::to_string(j + 1) + "@" + lab_.Address(j) +
                 ":" + std::to_string(ports_[j]);
      client_urls += (j ? "," : "") + Name(j) + "=unix://" + SocketPath(j);
    }
    std::vector<std::string> argv = lab_.ExecPrefix(i);
    for (const std::string& a :
         {std::string(kServerBin), std::string("--name"), Name(i), std::string("--data-dir"),
          DataDir(i), std::string("--listen-client-urls"), "unix://" + SocketPath(i),
          std::string("--initial-cluster"), cluster, std::string("--initial-cluster-client-urls"),
          client_urls, std::string("--key-file"), key_, std::string("--totem-transport"),
          std::string("unicast")}) {
      argv.push_back(a);
    }
    // `ip netns exec` execs the server in place: the child is totemkvd.
    children_[i] = std::make_unique<Child>(argv, Log(i));
  }

  void Kill(size_t i) { children_[i].reset(); }  // SIGKILL, no goodbye

  // Removes node i's data dir (the node must be down).
  bool Wipe(size_t i) {
    std::error_code ec;
    std::filesystem::remove_all(DataDir(i), ec);
    return !ec && !std::filesystem::exists(DataDir(i));
  }

  // The current incarnation has not exited.
  bool Running(size_t i) {
    return children_[i] != nullptr && !children_[i]->Wait(milliseconds(0)).has_value();
  }

  std::unique_ptr<etcdserverpb::KV::Stub> Kv(size_t i) const {
    return etcdserverpb::KV::NewStub(channels_[i]);
  }
  std::unique_ptr<etcdserverpb::Maintenance::Stub> Maintenance(size_t i) const {
    return etcdserverpb::Maintenance::NewStub(channels_[i]);
  }
  std::unique_ptr<totemkv::admin::v1::Admin::Stub> Admin(size_t i) const {
    return totemkv::admin::v1::Admin::NewStub(channels_[i]);
  }
  std::vector<NodeChannel> Channels() const {
    std::vector<NodeChannel> nodes;
    for (size_t i = 0; i < kNodes; ++i) nodes.push_back({Name(i), channels_[i]});
    return nodes;
  }

  // The last `lines` lines of every node's current log.
  std::string LogTails(size_t lines) const {
    std::string s;
    for (size_t i = 0; i < kNodes; ++i) {
      s += "---- " + Name(i) + " incarnation " + std::to_string(incarnation_[i]) + " (" + Log(i) +
           ")\n" + Tail(ReadFile(Log(i)), lines);
    }
    return s;
  }

  std::string Name(size_t i) const { return "n" + std::to_string(i + 1); }
  std::string DataDir(size_t i) const { return dir_ + "/" + Name(i); }
  std::string SocketPath(size_t i) const { return dir_ + "/" + Name(i) + ".sock"; }
  std::string Log(size_t i) const {
    return dir_ + "/" + Name(i) + "." + std::to_string(incarnation_[i]) + ".log";
  }

 private:
  std::string dir_;
  const NetLab& lab_;
  std::string key_;
  std::vector<uint16_t> ports_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<Child>> children_;
  std::vector<int> incarnation_;
};

// Every node answers GetRing with one and the same regular configuration of
// all five members, not in transition. `why` says who did not.
bool RingOfAll(const FaultCluster& c, std::string* why) { return RingOfAll(c.Channels(), why); }

// One acknowledged put.
struct Ack {
  std::string key;
  std::string value;
  int64_t revision = 0;
};

// Several clients putting unique keys (kPrefix c<client>/<seq>) through every
// node. A put is retried, with the same op id, on the next node after any
// error or timeout until it is acknowledged or the load stops; only
// acknowledged puts are recorded.
class Load {
 public:
  Load(const FaultCluster& cluster, size_t clients, uint64_t seed)
      : cluster_(cluster), clients_(clients), seed_(seed), acks_(clients) {}
  ~Load() { Stop(); }

  void Start() {
    for (size_t t = 0; t < clients_; ++t) threads_.emplace_back([this, t] { Run(t); });
  }
  void Stop() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  size_t acked() const { return acked_.load(); }
  std::vector<Ack> Acks() const {
    std::vector<Ack> all;
    for (const auto& list : acks_) all.insert(all.end(), list.begin(), list.end());
    return all;
  }
  // Failed attempts by gRPC code, with the first message seen for each.
  std::string Errors() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string s;
    for (const auto& [code, entry] : errors_) {
      s += "  code " + std::to_string(code) + " x" + std::to_string(entry.first) + ": " +
           entry.second + "\n";
    }
    return s;
  }
  size_t unfinished() const { return unfinished_.load(); }
  // Failed attempts with a code other than UNAVAILABLE (refused, or the
  // node is down) and DEADLINE_EXCEEDED (cut off): a server bug.
  size_t Unexpected() const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& [code, entry] : errors_) {
      if (code != grpc::StatusCode::UNAVAILABLE && code != grpc::StatusCode::DEADLINE_EXCEEDED) {
        n += entry.first;
      }
    }
    return n;
  }

 private:
  void Run(size_t t) {
    std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> kv;
    for (size_t i = 0; i < kNodes; ++i) kv.push_back(cluster_.Kv(i));
    size_t node = t % kNodes;
    const std::string op_id_high = Hex64(seed_ * 0x9E3779B97F4A7C15ULL + t + 1);
    for (uint64_t seq = 0; !stop_; ++seq) {
      char key[64];
      std::snprintf(key, sizeof(key), "%sc%zu/%06" PRIu64, kPrefix, t, seq);
      const std::string value =
          "seed" + std::to_string(seed_) + "-c" + std::to_string(t) + "-" + std::to_string(seq);
      const std::string op_id = op_id_high + Hex64(seq + 1);
      size_t failures_in_a_row = 0;
      for (;;) {
        if (stop_) {
          ++unfinished_;
          break;
        }
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + milliseconds(1500));
        ctx.AddMetadata("totemkv-op-id", op_id);
        etcdserverpb::PutRequest req;
        req.set_key(key);
        req.set_value(value);
        etcdserverpb::PutResponse resp;
        const grpc::Status s = kv[node]->Put(&ctx, req, &resp);
        if (s.ok()) {
          acks_[t].push_back({key, value, resp.header().revision()});
          ++acked_;
          break;
        }
        {
          std::lock_guard<std::mutex> lock(mu_);
          auto& entry = errors_[static_cast<int>(s.error_code())];
          if (entry.first++ == 0) entry.second = cluster_.Name(node) + ": " + s.error_message();
        }
        node = (node + 1) % kNodes;
        // Every node refused in turn: back off briefly before the next
        // round of attempts rather than spin.
        if (++failures_in_a_row % kNodes == 0) std::this_thread::sleep_for(milliseconds(50));
      }
    }
  }

  const FaultCluster& cluster_;
  const size_t clients_;
  const uint64_t seed_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> acked_{0};
  std::atomic<size_t> unfinished_{0};
  std::vector<std::vector<Ack>> acks_;  // [client], written by that client only
  mutable std::mutex mu_;
  std::map<int, std::pair<size_t, std::string>> errors_;  // guarded by mu_
  std::vector<std::thread> threads_;
};

// Every key under kPrefix at node `kv` as key -> value, one serializable
// read at one revision, in pages.
grpc::Status ReadAll(etcdserverpb::KV::Stub& kv, std::map<std::string, std::string>* out) {
  out->clear();
  std::string start = kPrefix;
  std::string end = kPrefix;
  end.back() = static_cast<char>(end.back() + 1);
  int64_t revision = 0;
  for (;;) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
    etcdserverpb::RangeRequest req;
    req.set_key(start);
    req.set_range_end(end);
    req.set_limit(2000);
    req.set_serializable(true);
    req.set_revision(revision);
    etcdserverpb::RangeResponse resp;
    const grpc::Status s = kv.Range(&ctx, req, &resp);
    if (!s.ok()) return s;
    if (revision == 0) revision = resp.header().revision();
    for (const auto& kvp : resp.kvs()) (*out)[kvp.key()] = kvp.value();
    if (!resp.more() || resp.kvs_size() == 0) return grpc::Status::OK;
    start = resp.kvs(resp.kvs_size() - 1).key() + std::string(1, '\0');
  }
}

// A linearizable read at node `kv` (its answer implies the node applied
// everything ordered before the read).
grpc::Status LinearizableRead(etcdserverpb::KV::Stub& kv) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + seconds(2));
  etcdserverpb::RangeRequest req;
  req.set_key(kPrefix);
  req.set_limit(1);
  etcdserverpb::RangeResponse resp;
  return kv.Range(&ctx, req, &resp);
}

// The fixture: a NetLab of five namespaces and five totemkvd in it, all
// serving one ring. Skips when not root or without `ip netns`.
class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "the fault test builds network namespaces and iptables rules: it needs "
                      "root (run it as root, e.g. in the CI container)";
    }
    ASSERT_FALSE(dir_.path().empty());
    lab_ = std::make_unique<NetLab>(dir_, kNodes);
    std::string error;
    if (!lab_->Create(&error)) {
      const char* skip = std::getenv("TOTEMKV_SKIP_NETNS");
      if ((skip != nullptr && std::string(skip) == "1") ||
          RunCommand({totem::testing::IpBinary(), "netns", "list"}, dir_.path() + "/ip.log") != 0) {
        GTEST_SKIP() << "cannot build the namespace network (`ip netns` unavailable, or "
                        "TOTEMKV_SKIP_NETNS=1): "
                     << error;
      }
      FAIL() << "cannot build the namespace network (needs root, ip and iptables; set "
                "TOTEMKV_SKIP_NETNS=1 to skip): "
             << error;
    }
    cluster_ = std::make_unique<FaultCluster>(dir_, *lab_);
    ASSERT_TRUE(cluster_->Init(&error)) << error;
    for (size_t i = 0; i < kNodes; ++i) cluster_->Start(i);
    std::string why;
    ASSERT_TRUE(WaitFor([&] { return RingOfAll(*cluster_, &why); }, seconds(30)))
        << "no ring of all five: " << why << "\n"
        << cluster_->LogTails(30);
  }

  void TearDown() override {
    load_.reset();  // stops the clients before the servers go
    if (HasFailure() && cluster_ != nullptr) {
      std::fprintf(stderr, "%s\n(TOTEMKV_KEEP_TEST_DIR=1 keeps every log)\n",
                   cluster_->LogTails(40).c_str());
    }
    cluster_.reset();  // servers die before their namespaces go
    lab_.reset();
  }

  void StartLoad(uint64_t seed) {
    load_ = std::make_unique<Load>(*cluster_, 4, seed);
    load_->Start();
  }

  // Waits (up to `timeout`) until `count` more puts are acknowledged;
  // returns how long that took, or nullopt.
  std::optional<double> WaitForAcks(size_t count, milliseconds timeout) {
    const size_t target = load_->acked() + count;
    const Clock::time_point t0 = Clock::now();
    if (!WaitFor([&] { return load_->acked() >= target; }, timeout)) return std::nullopt;
    return MsSince(t0);
  }

  // The checks after the faults: the load is stopped, then every node must
  // rejoin one ring, serve linearizable reads, hold every acknowledged put
  // and agree on its store checksum.
  void CheckConvergence() {
    load_->Stop();
    std::vector<Ack> acks = load_->Acks();
    acks.insert(acks.end(), probe_acks_.begin(), probe_acks_.end());
    std::printf("load: %zu puts acknowledged, %zu unfinished at stop; failed attempts:\n%s",
                acks.size(), load_->unfinished(), load_->Errors().c_str());
    ASSERT_GT(acks.size(), 0u) << "no put was ever acknowledged";
    EXPECT_EQ(load_->Unexpected(), 0u) << "puts failed with unexpected codes:\n" << load_->Errors();

    std::string why;
    ASSERT_TRUE(WaitFor([&] { return RingOfAll(*cluster_, &why); }, seconds(20)))
        << "the nodes did not form one ring of five: " << why;

    // Every node serves a linearizable read (a deadline shared by all).
    const Clock::time_point deadline = Clock::now() + seconds(20);
    std::vector<bool> serving(kNodes, false);
    for (size_t i = 0; i < kNodes; ++i) {
      auto kv = cluster_->Kv(i);
      grpc::Status last;
      serving[i] = WaitFor(
          [&] {
            last = LinearizableRead(*kv);
            return last.ok();
          },
          std::chrono::duration_cast<milliseconds>(
              std::max(deadline - Clock::now(), Clock::duration(milliseconds(100)))));
      EXPECT_TRUE(serving[i]) << cluster_->Name(i)
                              << " refuses linearizable reads: " << last.error_message();
    }

    // Every acknowledged put is on every node, with its value.
    for (size_t i = 0; i < kNodes; ++i) {
      std::map<std::string, std::string> kvs;
      const grpc::Status s = ReadAll(*cluster_->Kv(i), &kvs);
      ASSERT_TRUE(s.ok()) << cluster_->Name(i) << ": " << s.error_message();
      size_t missing = 0;
      std::string examples;
      for (const Ack& a : acks) {
        auto it = kvs.find(a.key);
        if (it != kvs.end() && it->second == a.value) continue;
        if (++missing <= 5) {
          examples += "  " + a.key + " (acknowledged at revision " + std::to_string(a.revision) +
                      "): " + (it == kvs.end() ? "absent" : "value " + it->second) + "\n";
        }
      }
      EXPECT_EQ(missing, 0u) << cluster_->Name(i) << (serving[i] ? "" : " (not serving)")
                             << " lacks " << missing << " of " << acks.size()
                             << " acknowledged puts, e.g.:\n"
                             << examples;
      std::printf("%s: %zu keys, %zu of %zu acknowledged puts missing\n", cluster_->Name(i).c_str(),
                  kvs.size(), missing, acks.size());
    }

    // Identical stores: the checksums agree (the nodes may still be
    // applying the last batches: poll).
    std::vector<totemkv::admin::v1::GetStoreChecksumResponse> sums;
    std::string table;
    const bool equal = WaitFor(
        [&] { return StoreChecksumsEqual(cluster_->Channels(), &sums, &table); }, seconds(15));
    EXPECT_TRUE(equal) << "the stores differ:\n" << table;
    std::printf("store checksums:\n%s", table.c_str());

    // What an etcd operator would compare: Maintenance.HashKV at one
    // revision that every node has (etcdctl endpoint hashkv).
    int64_t revision = INT64_MAX;
    for (const auto& sum : sums) revision = std::min(revision, sum.revision());
    std::string hashes;
    std::set<std::pair<uint32_t, int64_t>> distinct;
    for (size_t i = 0; i < kNodes; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
      etcdserverpb::HashKVRequest req;
      req.set_revision(revision);
      etcdserverpb::HashKVResponse resp;
      const grpc::Status s = cluster_->Maintenance(i)->HashKV(&ctx, req, &resp);
      EXPECT_TRUE(s.ok()) << cluster_->Name(i) << ": HashKV: " << s.error_message();
      distinct.insert({resp.hash(), resp.compact_revision()});
      hashes += "  " + cluster_->Name(i) + ": hash=" + std::to_string(resp.hash()) +
                " compact_revision=" + std::to_string(resp.compact_revision()) + "\n";
    }
    EXPECT_EQ(distinct.size(), 1u) << "HashKV at revision " << revision << " differs:\n" << hashes;
    std::printf("HashKV at revision %lld:\n%s", static_cast<long long>(revision), hashes.c_str());
  }

  TempDir dir_;
  std::unique_ptr<NetLab> lab_;
  std::unique_ptr<FaultCluster> cluster_;
  // Cut off from the majority, node `i` must refuse a write with
  // UNAVAILABLE naming the missing quorum (a probe put may still succeed
  // before the node notices the partition: then it counts as
  // acknowledged), and must still serve a serializable read.
  // Returns how long the refusal took to come.
  double ExpectMinorityRefuses(size_t i, size_t round) {
    const Clock::time_point t0 = Clock::now();
    auto kv = cluster_->Kv(i);
    grpc::Status last;
    int probe = 0;
    const bool refused = WaitFor(
        [&] {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + seconds(1));
          etcdserverpb::PutRequest req;
          req.set_key(std::string(kPrefix) + "probe/" + std::to_string(round) + "/" +
                      std::to_string(probe++));
          req.set_value("minority probe");
          etcdserverpb::PutResponse resp;
          last = kv->Put(&ctx, req, &resp);
          if (last.ok()) probe_acks_.push_back({req.key(), req.value(), resp.header().revision()});
          return last.error_code() == grpc::StatusCode::UNAVAILABLE &&
                 last.error_message().find("quorum") != std::string::npos;
        },
        seconds(5));
    const double refused_ms = MsSince(t0);
    EXPECT_TRUE(refused) << "round " << round << ": minority node " << cluster_->Name(i)
                         << " did not refuse a write for want of a quorum; last answer: code "
                         << last.error_code() << " " << last.error_message();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(2));
    etcdserverpb::RangeRequest req;
    req.set_key(kPrefix);
    req.set_limit(1);
    req.set_serializable(true);
    etcdserverpb::RangeResponse resp;
    const grpc::Status s = kv->Range(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << "round " << round << ": minority node " << cluster_->Name(i)
                        << " refused a serializable read: " << s.error_message();
    return refused_ms;
  }

  std::unique_ptr<Load> load_;
  std::vector<Ack> probe_acks_;  // minority probes that were acknowledged
};

// The harness itself, without faults: load through all five nodes, then
// the same convergence checks as after faults.
TEST_F(FaultTest, FiveNodes_NoFaults_EveryAckPresent_ChecksumsEqual) {
  StartLoad(EnvOr("TOTEMKV_FAULT_SEED", 1));
  ASSERT_TRUE(WaitForAcks(300, seconds(20)).has_value()) << "the load made no progress:\n"
                                                         << load_->Errors();
  CheckConvergence();
}

TEST_F(FaultTest, FiveNodes_KillRestartPartitionWipe_EveryAckPresent_ChecksumsEqual) {
  const uint64_t seed = EnvOr("TOTEMKV_FAULT_SEED", std::random_device{}());
  const size_t rounds = EnvOr("TOTEMKV_FAULT_ROUNDS", 8);
  std::printf("fault test seed=%" PRIu64 " rounds=%zu (rerun: TOTEMKV_FAULT_SEED=%" PRIu64 ")\n",
              seed, rounds, seed);
  RecordProperty("seed", std::to_string(seed));
  SCOPED_TRACE("TOTEMKV_FAULT_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto pick = [&rng](size_t n) { return static_cast<size_t>(rng() % n); };

  StartLoad(seed);
  ASSERT_TRUE(WaitForAcks(50, seconds(20)).has_value()) << "no progress before the faults:\n"
                                                        << load_->Errors();
  const size_t wipe_round = rounds == 0 ? SIZE_MAX : pick(rounds);
  std::string error;
  for (size_t round = 0; round < rounds; ++round) {
    const bool wipe = round == wipe_round;
    const bool partition = !wipe && pick(2) == 0;
    // How long the fault lasts (a duration, not a wait for state).
    const milliseconds hold(300 + pick(900));
    const size_t acked_before = load_->acked();
    const Clock::time_point fault_start = Clock::now();
    std::string what;
    if (partition) {
      std::vector<size_t> order(kNodes);
      for (size_t i = 0; i < kNodes; ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), rng);
      std::vector<size_t> a(order.begin(), order.begin() + 3), b(order.begin() + 3, order.end());
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      what = "partition " + Nodes(a) + "|" + Nodes(b);
      ASSERT_TRUE(lab_->Partition(a, b, &error, "udp")) << error;
      const Clock::time_point cut = Clock::now();
      const double refused_ms = ExpectMinorityRefuses(b[0], round);
      what += " (" + cluster_->Name(b[0]) + " refused writes after " +
              std::to_string(static_cast<int>(refused_ms)) + " ms)";
      const Clock::duration left = hold - (Clock::now() - cut);
      if (left > Clock::duration::zero()) std::this_thread::sleep_for(left);
      ASSERT_TRUE(lab_->Heal(&error)) << error;
    } else {
      const size_t victim = pick(kNodes);
      what = std::string(wipe ? "kill -9, wipe and restart " : "kill -9 and restart ") +
             cluster_->Name(victim);
      cluster_->Kill(victim);
      if (wipe) {
        ASSERT_TRUE(cluster_->Wipe(victim)) << cluster_->DataDir(victim);
      }
      std::this_thread::sleep_for(hold);
      cluster_->Start(victim);
    }
    const size_t acked_during = load_->acked() - acked_before;
    const double held_ms = MsSince(fault_start);
    const Clock::time_point healed = Clock::now();
    std::string why;
    ASSERT_TRUE(WaitFor([&] { return RingOfAll(*cluster_, &why); }, seconds(20)))
        << "round " << round << " (" << what << "): no ring of all five after it: " << why;
    const double ring_ms = MsSince(healed);
    // Writes go through again (some node accepts them).
    const std::optional<double> resumed = WaitForAcks(20, seconds(10));
    std::printf(
        "round %zu: %s, held %.0f ms: %zu puts acknowledged meanwhile; ring of five "
        "after %.0f ms; writes flowing %s\n",
        round, what.c_str(), held_ms, acked_during, ring_ms,
        resumed ? ("after " + std::to_string(static_cast<int>(*resumed)) + " ms").c_str()
                : "NOT within 10 s");
    EXPECT_TRUE(resumed.has_value())
        << "round " << round << " (" << what << "): writes did not resume:\n"
        << load_->Errors();
    for (size_t i = 0; i < kNodes; ++i) {
      ASSERT_TRUE(cluster_->Running(i)) << cluster_->Name(i) << " exited:\n"
                                        << Tail(ReadFile(cluster_->Log(i)), 40);
    }
  }
  CheckConvergence();
}

}  // namespace
}  // namespace totemkv::testing

// In-process integration tests of the runtime (totem::Node) over real UDP
// sockets on 127.0.0.1: total order across 3 and 5 nodes under concurrent
// mixed traffic, frame authentication, submit back-pressure, the ring
// sequence state file and the configuration snapshot.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"
#include "totem/node.h"
#include "totem/runtime/state_file.h"

namespace totem {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FreeUdpPorts;
using testing::WaitFor;

const std::string kKey = "integration-test-key-0123456789abcdef";

struct Delivered {
  NodeId sender;
  Guarantee guarantee;
  std::vector<uint8_t> payload;
  bool operator==(const Delivered&) const = default;
};

// Records one node's deliveries.
struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Delivered> seq;
  std::vector<ConfigurationEvent> configs;

  Callbacks MakeCallbacks() {
    Callbacks cb;
    cb.on_deliver = [this](const Delivery& d) {
      std::lock_guard<std::mutex> lock(mu);
      seq.push_back(Delivered{d.sender, d.guarantee, {d.payload.begin(), d.payload.end()}});
      cv.notify_all();
    };
    cb.on_configuration = [this](const ConfigurationEvent& e) {
      std::lock_guard<std::mutex> lock(mu);
      configs.push_back(e);
    };
    return cb;
  }

  bool WaitForCount(size_t n, milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, [&] { return seq.size() >= n; });
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return seq.size();
  }
};

NodeConfig MakeConfig(NodeId self, const std::vector<uint16_t>& ports) {
  NodeConfig c;
  c.ring.node_id = self;
  for (size_t i = 0; i < ports.size(); ++i) {
    const auto id = static_cast<NodeId>(i + 1);
    c.ring.members.push_back(id);
    c.transport.peers.push_back(Peer{id, "127.0.0.1", ports[i]});
  }
  c.transport.key = kKey;
  return c;
}

// Message i of node n: u32 n | u32 i | u8 guarantee | filler. Every third
// message is larger than a frame, so it is fragmented.
std::vector<uint8_t> MakePayload(NodeId n, uint32_t i, Guarantee g) {
  const size_t size = i % 3 == 0 ? 2000 + (i * 37) % 4000 : 9 + (i * 13) % 200;
  std::vector<uint8_t> p(size);
  std::memcpy(p.data(), &n, 4);
  std::memcpy(p.data() + 4, &i, 4);
  p[8] = static_cast<uint8_t>(g);
  for (size_t k = 9; k < size; ++k) p[k] = static_cast<uint8_t>(k * 31 + i + n);
  return p;
}

Status SubmitBlocking(Node& node, std::span<const uint8_t> data, Guarantee g) {
  const auto deadline = std::chrono::steady_clock::now() + seconds(20);
  for (;;) {
    Status st = node.Submit(data, g);
    if (st.code() != StatusCode::kWouldBlock || std::chrono::steady_clock::now() > deadline) {
      return st;
    }
    node.WaitWritable(milliseconds(100));
  }
}

class Ring {
 public:
  explicit Ring(size_t n) : ports_(FreeUdpPorts(n)), recorders_(n) {
    for (size_t i = 0; i < n; ++i) {
      StatusOr<std::unique_ptr<Node>> node = Node::Start(
          MakeConfig(static_cast<NodeId>(i + 1), ports_), recorders_[i].MakeCallbacks());
      EXPECT_TRUE(node.ok()) << node.status().ToString();
      if (node.ok()) nodes_.push_back(std::move(node).value());
    }
  }
  ~Ring() {
    for (auto& n : nodes_) n->Stop();
  }
  // Waits until every node is in the same regular configuration of all n
  // members (the ring forms dynamically, possibly through smaller rings).
  bool WaitFormed(milliseconds timeout) {
    return WaitFor(
        [&] {
          if (nodes_.empty()) return false;
          const ConfigurationView first = nodes_[0]->CurrentConfiguration();
          for (auto& n : nodes_) {
            const ConfigurationView v = n->CurrentConfiguration();
            if (v.in_transition || v.regular.members.size() != nodes_.size() ||
                v.regular.id != first.regular.id) {
              return false;
            }
          }
          return true;
        },
        timeout);
  }
  size_t size() const { return nodes_.size(); }
  Node& node(size_t i) { return *nodes_[i]; }
  Recorder& recorder(size_t i) { return recorders_[i]; }
  const std::vector<uint16_t>& ports() const { return ports_; }

 private:
  std::vector<uint16_t> ports_;
  std::vector<Recorder> recorders_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

// Every node submits concurrently; checks one identical total order,
// exactly-once delivery, per-sender FIFO and the submitted guarantees.
void RunConcurrentTraffic(size_t n, uint32_t per_node) {
  Ring ring(n);
  ASSERT_EQ(ring.size(), n);
  ASSERT_TRUE(ring.WaitFormed(seconds(20)));
  std::vector<size_t> installs_before(n);
  for (size_t i = 0; i < n; ++i) {
    installs_before[i] = ring.node(i).CurrentConfiguration().regular_installs;
  }
  std::vector<std::thread> senders;
  std::atomic<int> submit_failures{0};
  for (size_t i = 0; i < n; ++i) {
    senders.emplace_back([&ring, &submit_failures, i, per_node] {
      const auto id = static_cast<NodeId>(i + 1);
      for (uint32_t k = 1; k <= per_node; ++k) {
        const Guarantee g = (k + id) % 2 == 0 ? Guarantee::kSafe : Guarantee::kAgreed;
        if (!SubmitBlocking(ring.node(i), MakePayload(id, k, g), g).ok()) ++submit_failures;
      }
    });
  }
  for (auto& t : senders) t.join();
  ASSERT_EQ(submit_failures.load(), 0);

  const size_t total = n * per_node;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(ring.recorder(i).WaitForCount(total, seconds(30)))
        << "node " << i + 1 << " delivered " << ring.recorder(i).size() << " of " << total;
  }
  // Give stray duplicates a chance to show up before comparing.
  for (size_t i = 0; i < n; ++i) {
    const Counters c = ring.node(i).GetCounters();
    EXPECT_EQ(c.messages_delivered, total) << "node " << i + 1;
    EXPECT_EQ(c.drop_auth, 0u);
    EXPECT_EQ(c.send_errors, 0u);
  }

  std::vector<Delivered> reference;
  {
    std::lock_guard<std::mutex> lock(ring.recorder(0).mu);
    reference = ring.recorder(0).seq;
  }
  ASSERT_EQ(reference.size(), total);
  std::map<NodeId, uint32_t> last;
  for (const Delivered& d : reference) {
    ASSERT_GE(d.payload.size(), 9u);
    NodeId claimed;
    uint32_t index;
    std::memcpy(&claimed, d.payload.data(), 4);
    std::memcpy(&index, d.payload.data() + 4, 4);
    ASSERT_EQ(claimed, d.sender);
    ASSERT_EQ(index, last[d.sender] + 1) << "per-sender FIFO broken for node " << d.sender;
    last[d.sender] = index;
    ASSERT_EQ(static_cast<Guarantee>(d.payload[8]), d.guarantee);
    ASSERT_EQ(d.payload, MakePayload(claimed, index, d.guarantee)) << "payload corrupted";
  }
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(last[static_cast<NodeId>(i + 1)], per_node);

  for (size_t i = 1; i < n; ++i) {
    std::lock_guard<std::mutex> lock(ring.recorder(i).mu);
    const std::vector<Delivered>& seq = ring.recorder(i).seq;
    ASSERT_EQ(seq.size(), total) << "node " << i + 1;
    for (size_t k = 0; k < total; ++k) {
      ASSERT_TRUE(seq[k] == reference[k]) << "node " << i + 1 << " differs at position " << k;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    std::lock_guard<std::mutex> lock(ring.recorder(i).mu);
    ASSERT_FALSE(ring.recorder(i).configs.empty());
    EXPECT_EQ(ring.recorder(i).configs.front().kind, ConfigurationKind::kRegular);
    EXPECT_EQ(ring.recorder(i).configs.back().kind, ConfigurationKind::kRegular);
    EXPECT_EQ(ring.recorder(i).configs.back().members.size(), n);
    // No configuration change while the traffic ran (nobody failed).
    const ConfigurationView v = ring.node(i).CurrentConfiguration();
    EXPECT_EQ(v.regular_installs, installs_before[i]) << "node " << i + 1;
    EXPECT_EQ(v.regular.id, ring.recorder(i).configs.back().id);
  }
}

TEST(RuntimeRing, ThreeNodes_ConcurrentMixedTraffic_IdenticalOrder) {
  RunConcurrentTraffic(3, 2000);
}

TEST(RuntimeRing, FiveNodes_ConcurrentMixedTraffic_IdenticalOrder) {
  RunConcurrentTraffic(5, 1000);
}

// A raw socket aimed at node 1.
class RawSender {
 public:
  explicit RawSender(uint16_t port) : fd_(::socket(AF_INET, SOCK_DGRAM, 0)) {
    to_.sin_family = AF_INET;
    to_.sin_port = htons(port);
    to_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  ~RawSender() { ::close(fd_); }
  void Send(const std::vector<uint8_t>& d) {
    ASSERT_EQ(
        ::sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<const sockaddr*>(&to_), sizeof(to_)),
        static_cast<ssize_t>(d.size()));
  }

 private:
  int fd_;
  sockaddr_in to_{};
};

std::vector<uint8_t> Signed(std::vector<uint8_t> frame, const std::string& key) {
  unsigned char tag[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), frame.data(), frame.size(), tag,
       &len);
  frame.insert(frame.end(), tag, tag + len);
  return frame;
}

// A plausible data-frame header: magic "TK", version 1, type data, sender 2,
// ring {1, 1}, then a body that does not decode.
std::vector<uint8_t> FakeFrame() {
  std::vector<uint8_t> f = {'T', 'K', 1, 2, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
  f.resize(24, 0);
  for (int i = 0; i < 3; ++i) f.push_back(0xEE);  // shorter than any frame body
  return f;
}

TEST(RuntimeRing, Authentication_BadFramesDroppedAndCounted_RingKeepsWorking) {
  Ring ring(3);
  ASSERT_EQ(ring.size(), 3u);
  ASSERT_TRUE(ring.WaitFormed(seconds(20)));
  RawSender raw(ring.node(0).bound_port());

  std::vector<uint8_t> garbage(300);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 7 + 3);
  raw.Send(garbage);                                                 // no valid tag
  raw.Send({1, 2, 3, 4, 5});                                         // shorter than header + tag
  raw.Send(Signed(FakeFrame(), "some-other-key-0123456789abcdef"));  // wrong key
  std::vector<uint8_t> tampered = Signed(FakeFrame(), kKey);
  tampered[30] ^= 1;
  raw.Send(tampered);  // modified after signing
  std::vector<uint8_t> truncated = Signed(FakeFrame(), kKey);
  truncated.resize(truncated.size() - 5);
  raw.Send(truncated);                  // tag cut short
  raw.Send(Signed(FakeFrame(), kKey));  // authentic but malformed body

  ASSERT_TRUE(WaitFor(
      [&] {
        const Counters c = ring.node(0).GetCounters();
        return c.drop_auth >= 4 && c.drop_malformed + c.drop_bad_version + c.drop_foreign_ring +
                                           c.drop_unknown_sender >=
                                       2;
      },
      seconds(5)))
      << ring.node(0).GetCounters().ToString();
  const Counters c = ring.node(0).GetCounters();
  EXPECT_EQ(c.drop_auth, 4u) << c.ToString();

  // The ring still orders messages.
  for (size_t i = 0; i < 3; ++i) {
    const std::vector<uint8_t> p = MakePayload(static_cast<NodeId>(i + 1), 1, Guarantee::kSafe);
    ASSERT_TRUE(SubmitBlocking(ring.node(i), p, Guarantee::kSafe).ok());
  }
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(ring.recorder(i).WaitForCount(3, seconds(10))) << "node " << i + 1;
  }
}

TEST(RuntimeRing, BackPressure_FullQueueRefusesWithWouldBlock_ThenDrains) {
  // Node 1's I/O thread is held inside its first configuration callback, so
  // nothing it queues can leave and the bound must hold; then it is let go
  // and node 2 starts.
  const std::vector<uint16_t> ports = FreeUdpPorts(2);
  NodeConfig c1 = MakeConfig(1, ports);
  c1.ring.max_pending_bytes = 64 * 1024;
  c1.ring.max_message_bytes = 16 * 1024;
  Recorder r1, r2;
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool entered = false;
  bool released = false;
  Callbacks cb1 = r1.MakeCallbacks();
  cb1.on_configuration = [&, record = cb1.on_configuration](const ConfigurationEvent& e) {
    record(e);
    std::unique_lock<std::mutex> lock(gate_mu);
    entered = true;
    gate_cv.notify_all();
    gate_cv.wait(lock, [&] { return released; });
  };
  auto release = [&] {
    std::lock_guard<std::mutex> lock(gate_mu);
    released = true;
    gate_cv.notify_all();
  };
  StatusOr<std::unique_ptr<Node>> n1 = Node::Start(c1, cb1);
  ASSERT_TRUE(n1.ok()) << n1.status().ToString();
  Node& node1 = *n1.value();
  // Declared after the node: lets the I/O thread go before the node's
  // destructor joins it, also when an assertion ends the test early.
  struct Releaser {
    std::function<void()> release;
    ~Releaser() { release(); }
  } releaser{release};
  {
    std::unique_lock<std::mutex> lock(gate_mu);
    ASSERT_TRUE(gate_cv.wait_for(lock, seconds(10), [&] { return entered; }));
  }

  EXPECT_EQ(node1.Submit(std::vector<uint8_t>(16 * 1024 + 1), Guarantee::kAgreed).code(),
            StatusCode::kResourceExhausted);

  const std::vector<uint8_t> msg(1000, 0x5A);
  size_t accepted = 0;
  Status st;
  for (int i = 0; i < 10000; ++i) {
    st = node1.Submit(msg, Guarantee::kAgreed);
    if (!st.ok()) break;
    ++accepted;
  }
  ASSERT_EQ(st.code(), StatusCode::kWouldBlock) << st.ToString();
  EXPECT_LE(accepted * msg.size(), c1.ring.max_pending_bytes);
  EXPECT_GE(accepted * msg.size(), c1.ring.max_pending_bytes - msg.size() - 2 * 1400);
  EXPECT_FALSE(node1.WaitWritable(milliseconds(50)));
  EXPECT_EQ(node1.Submit(msg, Guarantee::kAgreed).code(), StatusCode::kWouldBlock);

  // Let node 1 go and bring up node 2: the queue drains and node 1 delivers
  // everything it accepted (node 2 sees what is ordered once it has joined).
  release();
  EXPECT_GE(node1.GetCounters().submits_would_block, 2u);  // needs the I/O thread
  NodeConfig c2 = MakeConfig(2, ports);
  c2.ring.max_pending_bytes = c1.ring.max_pending_bytes;
  c2.ring.max_message_bytes = c1.ring.max_message_bytes;
  StatusOr<std::unique_ptr<Node>> n2 = Node::Start(c2, r2.MakeCallbacks());
  ASSERT_TRUE(n2.ok()) << n2.status().ToString();
  EXPECT_TRUE(node1.WaitWritable(seconds(10)));
  EXPECT_TRUE(r1.WaitForCount(accepted, seconds(10))) << r1.size() << " of " << accepted;
  ASSERT_TRUE(WaitFor(
      [&] {
        return node1.CurrentConfiguration().regular.members.size() == 2 &&
               n2.value()->CurrentConfiguration().regular.members.size() == 2;
      },
      seconds(10)));
  const size_t before2 = r2.size();
  ASSERT_TRUE(SubmitBlocking(node1, msg, Guarantee::kSafe).ok());
  EXPECT_TRUE(r2.WaitForCount(before2 + 1, seconds(10)));

  n2.value()->Stop();
  node1.Stop();
  EXPECT_EQ(node1.Submit(msg, Guarantee::kAgreed).code(), StatusCode::kUnavailable);
}

TEST(RuntimeRing, Start_InvalidConfig_ReturnsInvalidArgument) {
  NodeConfig c = MakeConfig(1, {5000, 5001, 5002});
  c.transport.peers.pop_back();
  StatusOr<std::unique_ptr<Node>> n = Node::Start(c, Callbacks{});
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(n.status().message().find("node 3 is a ring member but has no peer address"),
            std::string::npos)
      << n.status().message();

  c = MakeConfig(1, {5000, 5001});
  c.transport.key = "short";
  EXPECT_EQ(Node::Start(c, Callbacks{}).status().code(), StatusCode::kInvalidArgument);

  c = MakeConfig(1, {5000, 5001});
  c.transport.key.clear();
  c.transport.key_file = "/nonexistent/totem.key";
  EXPECT_EQ(Node::Start(c, Callbacks{}).status().code(), StatusCode::kIoError);
}

TEST(RuntimeRing, Start_MulticastConfigChecked_AndSelfPortZeroBindsEphemeral) {
  NodeConfig c = MakeConfig(1, {5000, 5001});
  c.transport.mode = TransportMode::kMulticast;
  c.transport.mcast_group = "10.1.2.3";
  c.transport.mcast_port = 5002;
  StatusOr<std::unique_ptr<Node>> n = Node::Start(c, Callbacks{});
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("transport.mcast_group"), std::string::npos);

  c = MakeConfig(1, {0, FreeUdpPorts(1).at(0)});
  n = Node::Start(c, Callbacks{});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_NE(n.value()->bound_port(), 0);
  n.value()->Stop();
}

TEST(StateFile, FreshDirectory_ClockDerivedValueWrittenAtOnce_ThenAtomicUpdates) {
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string state = dir.path() + "/state";  // created by Open
  const uint64_t clock_before = runtime::ClockDerivedRingSeq();
  uint64_t written = 0;
  {
    StatusOr<std::unique_ptr<runtime::RingSeqStore>> s = runtime::RingSeqStore::Open(state);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    runtime::RingSeqStore& store = *s.value();
    EXPECT_FALSE(store.loaded());
    EXPECT_GE(store.initial(), clock_before);
    // Microseconds since the epoch: two wiped restarts never share a base.
    EXPECT_LE(store.initial(), runtime::ClockDerivedRingSeq());
    EXPECT_GT(store.initial(), uint64_t{1'500'000'000} * 1'000'000) << "microseconds since 1970";
    StatusOr<uint64_t> v = runtime::RingSeqStore::ReadFile(store.path());
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(*v, store.initial());

    // A second owner is refused while the first holds the directory.
    StatusOr<std::unique_ptr<runtime::RingSeqStore>> other = runtime::RingSeqStore::Open(state);
    ASSERT_FALSE(other.ok());
    EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition);

    written = store.initial() + 7;
    ASSERT_TRUE(store.Write(written).ok());
    ASSERT_TRUE(store.Write(written - 3).ok());  // not above: nothing to do
    EXPECT_EQ(runtime::RingSeqStore::ReadFile(store.path()).value(), written);
    struct stat st {};
    EXPECT_NE(::stat((state + "/ring_seq.tmp").c_str(), &st), 0) << "temporary file left behind";
    EXPECT_EQ(::stat(state.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
  }
  // Reopened: the persisted value comes back.
  StatusOr<std::unique_ptr<runtime::RingSeqStore>> s = runtime::RingSeqStore::Open(state);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s.value()->loaded());
  EXPECT_EQ(s.value()->initial(), written);
}

TEST(StateFile, CorruptFile_RefusedWithClearMessage) {
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto write = [&](const std::string& text) {
    FILE* f = std::fopen((dir.path() + "/ring_seq").c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
  };
  for (const std::string& bad :
       {std::string(""), std::string("totem-ring-seq v1\n"), std::string("totem-ring-seq v1\n12"),
        std::string("totem-ring-seq v1\n12x\n"), std::string("totem-ring-seq v2\n12\n"),
        std::string("totem-ring-seq v1\n99999999999999999999999\n")}) {
    write(bad);
    StatusOr<std::unique_ptr<runtime::RingSeqStore>> s = runtime::RingSeqStore::Open(dir.path());
    ASSERT_FALSE(s.ok()) << "accepted '" << bad << "'";
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find("is corrupt"), std::string::npos) << s.status().message();
  }
  write("totem-ring-seq v1\n18446744073709551615\n");
  StatusOr<std::unique_ptr<runtime::RingSeqStore>> s = runtime::RingSeqStore::Open(dir.path());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s.value()->initial(), UINT64_MAX);
}

TEST(RuntimeRing, StateDir_RingSeqPersistedAndReloaded_SharingRefused) {
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::vector<uint16_t> ports = FreeUdpPorts(2);
  NodeConfig c = MakeConfig(1, ports);
  c.state_dir = dir.path() + "/node1";
  uint64_t persisted = 0;
  {
    StatusOr<std::unique_ptr<Node>> n = Node::Start(c, Callbacks{});
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    StatusOr<uint64_t> v = runtime::RingSeqStore::ReadFile(c.state_dir + "/ring_seq");
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(*v, n.value()->initial_ring_seq());

    // Another node may not use the same state directory at the same time.
    NodeConfig c2 = MakeConfig(2, ports);
    c2.state_dir = c.state_dir;
    StatusOr<std::unique_ptr<Node>> n2 = Node::Start(c2, Callbacks{});
    ASSERT_FALSE(n2.ok());
    EXPECT_EQ(n2.status().code(), StatusCode::kFailedPrecondition) << n2.status().ToString();

    // Whatever ring it is in, its sequence number was persisted first.
    ASSERT_TRUE(WaitFor([&] { return n.value()->CurrentConfiguration().regular_installs > 0; },
                        seconds(10)));
    const uint64_t ring_seq = n.value()->CurrentConfiguration().regular.id.seq;
    n.value()->Stop();
    persisted = runtime::RingSeqStore::ReadFile(c.state_dir + "/ring_seq").value();
    EXPECT_GE(persisted, ring_seq);
  }
  StatusOr<std::unique_ptr<Node>> again = Node::Start(c, Callbacks{});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again.value()->initial_ring_seq(), persisted);
  again.value()->Stop();

  // A state_dir that cannot be created is an error at Start.
  c.state_dir = dir.path() + "/missing/parent";
  EXPECT_EQ(Node::Start(c, Callbacks{}).status().code(), StatusCode::kIoError);
  c.state_dir = std::string("bad\0dir", 7);
  EXPECT_EQ(Node::Start(c, Callbacks{}).status().code(), StatusCode::kInvalidArgument);
}

TEST(RuntimeRing, CurrentConfiguration_TracksRegular_OneMemberRingOrders) {
  const std::vector<uint16_t> ports = FreeUdpPorts(1);
  NodeConfig c = MakeConfig(1, ports);
  Recorder r;
  StatusOr<std::unique_ptr<Node>> n = Node::Start(c, r.MakeCallbacks());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_TRUE(WaitFor([&] { return n.value()->CurrentConfiguration().regular.members.size() == 1; },
                      seconds(10)));
  const ConfigurationView v = n.value()->CurrentConfiguration();
  EXPECT_EQ(v.regular.members, std::vector<NodeId>{1});
  EXPECT_GE(v.regular_installs, 1u);
  EXPECT_FALSE(v.in_transition);
  {
    std::lock_guard<std::mutex> lock(r.mu);
    ASSERT_FALSE(r.configs.empty());
    EXPECT_EQ(r.configs.back().id, v.regular.id);
  }
  // A one-member ring orders its own messages.
  ASSERT_TRUE(
      SubmitBlocking(*n.value(), MakePayload(1, 1, Guarantee::kSafe), Guarantee::kSafe).ok());
  EXPECT_TRUE(r.WaitForCount(1, seconds(10)));
  n.value()->Stop();
}

TEST(KeyFile, WriteThenRead_RoundTripsAndRejectsCorruptFiles) {
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/k";
  ASSERT_TRUE(WriteKeyFile(path, 48).ok());
  struct stat s {};
  ASSERT_EQ(::stat(path.c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 0777, 0600u);
  StatusOr<std::string> key = ReadKeyFile(path);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->size(), 48u);

  auto write = [&](const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
  };
  write("totem-key v1\n00112233\n");
  EXPECT_EQ(ReadKeyFile(path).status().code(), StatusCode::kInvalidArgument);  // too short
  write("not a key\n");
  EXPECT_EQ(ReadKeyFile(path).status().code(), StatusCode::kInvalidArgument);
  write("totem-key v1\n00112233445566778899aabbccddeeffzz\n");
  EXPECT_EQ(ReadKeyFile(path).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadKeyFile(dir.path() + "/missing").status().code(), StatusCode::kIoError);
  EXPECT_EQ(WriteKeyFile(path, 8).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace totem

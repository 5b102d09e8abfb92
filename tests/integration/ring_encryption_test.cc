// Ring encryption (TransportConfig::encrypt, totem/runtime/auth.h): unit
// tests of FrameAuth in both modes (round trip, tampering, wrong key, a
// frame of the other mode), then real rings of totem::Node over UDP on
// 127.0.0.1: an encrypting ring orders messages while a plain UDP socket
// listed as a fourth peer captures what the nodes put on the wire and never
// sees the payload in clear (and does see it when encryption is off, so the
// check can fail); an encrypting node and two plain ones never form a ring
// and count each other's frames as drop_auth.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "test_util.h"
#include "totem/node.h"
#include "totem/runtime/auth.h"

namespace totem {
namespace {

using runtime::FrameAuth;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FreeUdpPorts;
using testing::WaitFor;

const std::string kKey = "ring-encryption-test-key-0123456789";

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

bool Contains(const std::vector<uint8_t>& hay, const std::string& needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

std::unique_ptr<FrameAuth> MakeAuth(const std::string& key, bool encrypt) {
  StatusOr<std::unique_ptr<FrameAuth>> a = FrameAuth::Create(key, encrypt);
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  return a.ok() ? std::move(a).value() : nullptr;
}

std::vector<uint8_t> Seal(FrameAuth& a, const std::vector<uint8_t>& frame) {
  std::vector<uint8_t> d(frame.size() + a.overhead_bytes());
  EXPECT_TRUE(a.Seal(frame, d.data()));
  return d;
}

// Opens a copy (Open decrypts in place); nullopt if rejected.
std::optional<std::vector<uint8_t>> OpenCopy(FrameAuth& a, std::vector<uint8_t> datagram) {
  std::optional<std::span<const uint8_t>> f = a.Open(datagram);
  if (!f) return std::nullopt;
  return std::vector<uint8_t>(f->begin(), f->end());
}

TEST(FrameAuth, Encrypt_RoundTrip_CiphertextHidesPlaintext_FreshNoncePerFrame) {
  auto a = MakeAuth(kKey, true);
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->encrypts());
  EXPECT_EQ(a->overhead_bytes(), FrameAuth::kNonceBytes + FrameAuth::kGcmTagBytes);
  const std::vector<uint8_t> frame = Bytes("header..SECRET-VALUE-42 and more bytes of a frame");
  const std::vector<uint8_t> d1 = Seal(*a, frame);
  const std::vector<uint8_t> d2 = Seal(*a, frame);
  EXPECT_FALSE(Contains(d1, "SECRET-VALUE-42"));
  EXPECT_NE(d1, d2);  // random nonce: the same frame never encrypts the same way
  EXPECT_FALSE(std::equal(d1.begin(), d1.begin() + 12, d2.begin()));
  // Another FrameAuth with the same key (another node) opens both.
  auto b = MakeAuth(kKey, true);
  EXPECT_EQ(OpenCopy(*b, d1), frame);
  EXPECT_EQ(OpenCopy(*b, d2), frame);
}

TEST(FrameAuth, Encrypt_TamperedTruncatedOrWrongKey_Rejected) {
  auto a = MakeAuth(kKey, true);
  auto other = MakeAuth("some-other-cluster-key-0123456789", true);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(other, nullptr);
  const std::vector<uint8_t> frame(300, 0x5A);
  const std::vector<uint8_t> d = Seal(*a, frame);
  for (size_t pos : {size_t{0}, size_t{11}, size_t{12}, size_t{150}, d.size() - 1}) {
    std::vector<uint8_t> t = d;
    t[pos] ^= 0x01;  // nonce, body or tag
    EXPECT_FALSE(OpenCopy(*a, t).has_value()) << "flipped byte " << pos;
  }
  std::vector<uint8_t> cut = d;
  cut.resize(cut.size() - 1);
  EXPECT_FALSE(OpenCopy(*a, cut).has_value());
  EXPECT_FALSE(OpenCopy(*a, std::vector<uint8_t>(d.begin(), d.begin() + 28)).has_value());
  EXPECT_FALSE(OpenCopy(*a, {}).has_value());
  EXPECT_FALSE(OpenCopy(*other, d).has_value());
  EXPECT_TRUE(OpenCopy(*a, d).has_value());
}

TEST(FrameAuth, ModesDoNotMix_PlaintextToEncryptingAndBack_Rejected) {
  auto hmac = MakeAuth(kKey, false);
  auto aead = MakeAuth(kKey, true);
  ASSERT_NE(hmac, nullptr);
  ASSERT_NE(aead, nullptr);
  EXPECT_FALSE(hmac->encrypts());
  EXPECT_EQ(hmac->overhead_bytes(), FrameAuth::kHmacTagBytes);
  const std::vector<uint8_t> frame = Bytes("a plaintext frame with its HMAC tag, same cluster key");
  const std::vector<uint8_t> signed_frame = Seal(*hmac, frame);
  EXPECT_TRUE(Contains(signed_frame, "plaintext frame"));  // authenticated, not hidden
  EXPECT_EQ(OpenCopy(*hmac, signed_frame), frame);
  EXPECT_FALSE(OpenCopy(*aead, signed_frame).has_value());
  EXPECT_FALSE(OpenCopy(*aead, frame).has_value());  // bare frame, no tag at all
  EXPECT_FALSE(OpenCopy(*hmac, Seal(*aead, frame)).has_value());
}

TEST(FrameAuth, ShortKey_InvalidArgumentInBothModes) {
  for (bool encrypt : {false, true}) {
    StatusOr<std::unique_ptr<FrameAuth>> a = FrameAuth::Create("short", encrypt);
    ASSERT_FALSE(a.ok());
    EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
  }
}

// A UDP socket on 127.0.0.1:port keeping every datagram it receives.
class Capture {
 public:
  explicit Capture(uint16_t port) : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  ~Capture() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool bound() const { return bound_; }
  // Reads what has arrived; true if some datagram contains `needle`.
  bool Drain(const std::string& needle) {
    std::vector<uint8_t> buf(65536);
    for (;;) {
      const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n < 0) break;
      ++datagrams_;
      if (!needle.empty() && Contains(std::vector<uint8_t>(buf.begin(), buf.begin() + n), needle)) {
        ++with_needle_;
      }
    }
    return with_needle_ > 0;
  }
  size_t datagrams() const { return datagrams_; }
  size_t with_needle() const { return with_needle_; }

 private:
  int fd_;
  bool bound_ = false;
  size_t datagrams_ = 0;
  size_t with_needle_ = 0;
};

struct Deliveries {
  std::mutex mu;
  std::vector<std::string> payloads;
  Callbacks MakeCallbacks() {
    Callbacks cb;
    cb.on_deliver = [this](const Delivery& d) {
      std::lock_guard<std::mutex> l(mu);
      payloads.emplace_back(d.payload.begin(), d.payload.end());
    };
    return cb;
  }
  bool Has(const std::string& p) {
    std::lock_guard<std::mutex> l(mu);
    return std::find(payloads.begin(), payloads.end(), p) != payloads.end();
  }
};

// Members 1..ports.size(); node `self`'s config, encrypting or not.
NodeConfig MakeConfig(NodeId self, const std::vector<uint16_t>& ports, bool encrypt) {
  NodeConfig c;
  c.ring.node_id = self;
  for (size_t i = 0; i < ports.size(); ++i) {
    const auto id = static_cast<NodeId>(i + 1);
    c.ring.members.push_back(id);
    c.transport.peers.push_back(Peer{id, "127.0.0.1", ports[i]});
  }
  c.transport.key = kKey;
  c.transport.encrypt = encrypt;
  return c;
}

struct RingUnderTest {
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<Deliveries> deliveries;
  RingUnderTest(const std::vector<uint16_t>& ports, const std::vector<bool>& encrypt)
      : deliveries(encrypt.size()) {
    for (size_t i = 0; i < encrypt.size(); ++i) {
      StatusOr<std::unique_ptr<Node>> n = Node::Start(
          MakeConfig(static_cast<NodeId>(i + 1), ports, encrypt[i]), deliveries[i].MakeCallbacks());
      EXPECT_TRUE(n.ok()) << n.status().ToString();
      if (n.ok()) nodes.push_back(std::move(n).value());
    }
  }
  ~RingUnderTest() {
    for (auto& n : nodes) n->Stop();
  }
  // Node i's current regular configuration has exactly `members`, settled.
  bool Settled(size_t i, const std::vector<NodeId>& members) {
    const ConfigurationView v = nodes[i]->CurrentConfiguration();
    std::vector<NodeId> got = v.regular.members;
    std::sort(got.begin(), got.end());
    return !v.in_transition && got == members;
  }
};

// Three nodes (members 1..3) and a capture socket listed as member 4: the
// nodes send it their joins and, in unicast mode, a copy of every data
// frame. Returns {payload delivered by all three, capture saw the secret}.
std::pair<bool, bool> RunRingWithCapture(bool encrypt, size_t* captured) {
  const std::vector<uint16_t> ports = FreeUdpPorts(4);
  Capture capture(ports[3]);
  EXPECT_TRUE(capture.bound());
  RingUnderTest ring({ports[0], ports[1], ports[2], ports[3]}, {encrypt, encrypt, encrypt});
  EXPECT_EQ(ring.nodes.size(), 3u);
  if (ring.nodes.size() != 3) return {false, false};
  EXPECT_TRUE(WaitFor(
      [&] {
        capture.Drain("");  // keep its receive buffer from filling with joins
        return ring.Settled(0, {1, 2, 3}) && ring.Settled(2, {1, 2, 3});
      },
      seconds(20)));
  const std::string secret = "known-plaintext-SECRET-7f3a9c";
  const bool submitted = WaitFor(
      [&] {
        const Status st = ring.nodes[1]->Submit(Bytes(secret), Guarantee::kSafe);
        EXPECT_TRUE(st.ok() || st.code() == StatusCode::kWouldBlock) << st.ToString();
        return st.code() != StatusCode::kWouldBlock;
      },
      seconds(5));
  EXPECT_TRUE(submitted);
  const bool delivered = submitted && WaitFor(
                                          [&] {
                                            return ring.deliveries[0].Has(secret) &&
                                                   ring.deliveries[1].Has(secret) &&
                                                   ring.deliveries[2].Has(secret);
                                          },
                                          seconds(10));
  // The copy of the data frame for member 4 left in the same sendmmsg as
  // those for 1 and 3, and loopback queues it at once: it is here now.
  capture.Drain(secret);
  *captured = capture.datagrams();
  return {delivered, capture.with_needle() > 0};
}

TEST(RingEncryption, EncryptingRing_OrdersMessages_WireNeverShowsPayload) {
  size_t captured = 0;
  const auto [delivered, seen] = RunRingWithCapture(true, &captured);
  EXPECT_TRUE(delivered);
  EXPECT_GT(captured, 0u);
  EXPECT_FALSE(seen) << "the payload crossed the wire in clear";
}

TEST(RingEncryption, AuthenticatedOnlyRing_WireShowsPayload_SoTheCaptureWorks) {
  size_t captured = 0;
  const auto [delivered, seen] = RunRingWithCapture(false, &captured);
  EXPECT_TRUE(delivered);
  EXPECT_GT(captured, 0u);
  EXPECT_TRUE(seen) << "the capture never saw the frame; the encryption test proves nothing";
}

TEST(RingEncryption, EncryptingAndPlainNodes_NeverFormARing_FramesCountedAsDropAuth) {
  const std::vector<uint16_t> ports = FreeUdpPorts(3);
  RingUnderTest ring(ports, {true, false, false});
  ASSERT_EQ(ring.nodes.size(), 3u);
  // 2 and 3 form a ring; 1 stays alone. Each side keeps rejecting the
  // other's joins and merge announcements.
  ASSERT_TRUE(WaitFor(
      [&] {
        return ring.Settled(0, {1}) && ring.Settled(1, {2, 3}) && ring.Settled(2, {2, 3}) &&
               ring.nodes[0]->GetCounters().drop_auth >= 20 &&
               ring.nodes[1]->GetCounters().drop_auth >= 10;
      },
      seconds(20)))
      << ring.nodes[0]->GetCounters().ToString() << "\n"
      << ring.nodes[1]->GetCounters().ToString();
  // Still apart after all those attempts.
  EXPECT_TRUE(ring.Settled(0, {1}));
  EXPECT_TRUE(ring.Settled(1, {2, 3}));
  // And traffic stays within each side.
  ASSERT_TRUE(ring.nodes[1]->Submit(Bytes("plain-side"), Guarantee::kSafe).ok());
  EXPECT_TRUE(WaitFor([&] { return ring.deliveries[2].Has("plain-side"); }, seconds(10)));
  EXPECT_FALSE(ring.deliveries[0].Has("plain-side"));
}

}  // namespace
}  // namespace totem

// UDP unicast / multicast transport with authenticated (optionally
// encrypted) frames. See
// udp_transport.h.
#include "udp_transport.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <boost/asio/ip/multicast.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

namespace totem::runtime {

namespace {

namespace asio = boost::asio;
using asio::ip::udp;

sockaddr_in MakeAddress(const std::string& host, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);  // validated by TransportConfig
  return a;
}

// Sets a socket buffer size, using the *FORCE variant (root may exceed
// net.core.[rw]mem_max) and falling back to the capped one.
void SetBuffer(int fd, int force_opt, int opt, int bytes) {
  if (bytes <= 0) return;
  if (::setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof(bytes)) == 0) return;
  (void)::setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes));
}

Status SocketError(const std::string& what, const boost::system::error_code& ec) {
  return IoError("transport: " + what + ": " + ec.message());
}

// Bytes of the core's header up to and including the sender id: all the
// transport needs. (Not core::kHeaderBytes: a HoldCancel frame is a bare
// header, and the core validates the rest.)
constexpr size_t kSenderEndBytes = 8;

NodeId HeaderSender(std::span<const uint8_t> frame) {
  // Header: magic u16 | version u8 | type u8 | sender u32 (little-endian).
  return static_cast<NodeId>(frame[4]) | (static_cast<NodeId>(frame[5]) << 8) |
         (static_cast<NodeId>(frame[6]) << 16) | (static_cast<NodeId>(frame[7]) << 24);
}

}  // namespace

UdpTransport::UdpTransport(asio::io_context& io, NodeId self, std::unique_ptr<FrameAuth> auth)
    : io_(io), self_(self), auth_(std::move(auth)), ucast_(io), mcast_(io) {}

UdpTransport::~UdpTransport() { Close(); }

StatusOr<std::unique_ptr<UdpTransport>> UdpTransport::Open(asio::io_context& io,
                                                           const TransportConfig& config,
                                                           NodeId self, std::string_view key) {
  StatusOr<std::unique_ptr<FrameAuth>> auth = FrameAuth::Create(key, config.encrypt);
  if (!auth.ok()) return auth.status();
  std::unique_ptr<UdpTransport> t(new UdpTransport(io, self, std::move(auth).value()));
  if (Status st = t->OpenSockets(config); !st.ok()) return st;
  return t;
}

Status UdpTransport::OpenSockets(const TransportConfig& config) {
  boost::system::error_code ec;
  multicast_mode_ = config.mode == TransportMode::kMulticast;
  const Peer* me = nullptr;
  for (const Peer& p : config.peers) {
    if (p.id == self_) {
      me = &p;
    } else {
      peers_.push_back(PeerAddress{p.id, MakeAddress(p.host, p.port)});
    }
  }
  if (me == nullptr) return InvalidArgument("transport.peers: no entry for this node");
  std::sort(peers_.begin(), peers_.end(),
            [](const PeerAddress& a, const PeerAddress& b) { return a.id < b.id; });

  const udp::endpoint local(asio::ip::make_address_v4(me->host, ec), me->port);
  if (ec) return SocketError("bad address " + me->host, ec);
  ucast_.open(udp::v4(), ec);
  if (ec) return SocketError("open unicast socket", ec);
  ucast_.bind(local, ec);
  if (ec) return SocketError("bind " + me->host + ":" + std::to_string(me->port), ec);
  bound_port_ = ucast_.local_endpoint(ec).port();
  if (ec) return SocketError("local_endpoint", ec);
  SetBuffer(ucast_.native_handle(), SO_RCVBUFFORCE, SO_RCVBUF, config.socket_buffer_bytes);
  SetBuffer(ucast_.native_handle(), SO_SNDBUFFORCE, SO_SNDBUF, config.socket_buffer_bytes);

  if (multicast_mode_) {
    const asio::ip::address_v4 group = asio::ip::make_address_v4(config.mcast_group, ec);
    if (ec) return SocketError("bad mcast_group " + config.mcast_group, ec);
    const asio::ip::address_v4 iface = asio::ip::make_address_v4(config.mcast_interface, ec);
    if (ec) return SocketError("bad mcast_interface " + config.mcast_interface, ec);
    group_ = MakeAddress(config.mcast_group, config.mcast_port);

    // Data frames leave through the unicast socket.
    ucast_.set_option(asio::ip::multicast::outbound_interface(iface), ec);
    if (ec) return SocketError("IP_MULTICAST_IF " + config.mcast_interface, ec);
    ucast_.set_option(asio::ip::multicast::hops(config.mcast_ttl), ec);
    if (ec) return SocketError("IP_MULTICAST_TTL", ec);
    ucast_.set_option(asio::ip::multicast::enable_loopback(config.mcast_loop), ec);
    if (ec) return SocketError("IP_MULTICAST_LOOP", ec);

    // And arrive on a socket bound to the group, shared with other local nodes.
    mcast_.open(udp::v4(), ec);
    if (ec) return SocketError("open multicast socket", ec);
    mcast_.set_option(udp::socket::reuse_address(true), ec);
    if (ec) return SocketError("SO_REUSEADDR", ec);
    mcast_.bind(udp::endpoint(group, config.mcast_port), ec);
    if (ec) {
      return SocketError("bind " + config.mcast_group + ":" + std::to_string(config.mcast_port),
                         ec);
    }
    mcast_.set_option(asio::ip::multicast::join_group(group, iface), ec);
    if (ec) {
      return SocketError("join " + config.mcast_group + " on " + config.mcast_interface, ec);
    }
    SetBuffer(mcast_.native_handle(), SO_RCVBUFFORCE, SO_RCVBUF, config.socket_buffer_bytes);
  }

  tx_arena_.resize(kTxArenaBytes);
  tx_msgs_.resize(kTxBatch);
  tx_iov_.resize(kTxBatch);
  rx_storage_.resize(kRecvBatch * kRecvBufferBytes);
  for (size_t i = 0; i < kRecvBatch; ++i) {
    rx_iov_[i].iov_base = rx_storage_.data() + i * kRecvBufferBytes;
    rx_iov_[i].iov_len = kRecvBufferBytes;
    rx_msgs_[i].msg_hdr = msghdr{};
    rx_msgs_[i].msg_hdr.msg_iov = &rx_iov_[i];
    rx_msgs_[i].msg_hdr.msg_iovlen = 1;
  }
  return Status::Ok();
}

void UdpTransport::Close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  if (ucast_.is_open()) ucast_.close(ec);
  if (mcast_.is_open()) mcast_.close(ec);
}

void UdpTransport::StartReceiving(Receiver* receiver) {
  receiver_ = receiver;
  ArmWait(false);
  if (multicast_mode_) ArmWait(true);
}

void UdpTransport::ArmWait(bool multicast_socket) {
  if (closed_ || waiting_[multicast_socket]) return;
  waiting_[multicast_socket] = true;
  udp::socket& s = multicast_socket ? mcast_ : ucast_;
  s.async_wait(udp::socket::wait_read,
               [this, multicast_socket](const boost::system::error_code& ec) {
                 waiting_[multicast_socket] = false;
                 if (ec || closed_) return;
                 Poll();
               });
}

void UdpTransport::Poll() {
  // Multicast first: data frames sent before a token are handled before it.
  // If the multicast socket is not empty yet, the unicast one (tokens)
  // waits for the next round, or the token would overtake its data.
  bool more = multicast_mode_ && Drain(mcast_.native_handle(), true) >= kDatagramsPerPoll;
  if (!more) more = Drain(ucast_.native_handle(), false) >= kDatagramsPerPoll;
  receiver_->OnReceiveBatchDone();
  if (more && !poll_posted_) {
    // Let timers and submissions run, then continue draining: the readiness
    // edge for what is still queued has already been consumed.
    poll_posted_ = true;
    asio::post(io_, [this] {
      poll_posted_ = false;
      if (!closed_) Poll();
    });
  }
  ArmWait(false);
  if (multicast_mode_) ArmWait(true);
}

size_t UdpTransport::Drain(int fd, bool multicast_socket) {
  size_t handled = 0;
  while (handled < kDatagramsPerPoll) {
    const size_t want = std::min(kRecvBatch, kDatagramsPerPoll - handled);
    for (size_t i = 0; i < want; ++i) {
      rx_msgs_[i].msg_hdr.msg_flags = 0;
      rx_msgs_[i].msg_len = 0;
    }
    const int n = ::recvmmsg(fd, rx_msgs_, static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: drained; ECONNREFUSED and friends: nothing to read now
    }
    for (int i = 0; i < n; ++i) {
      auto* data = static_cast<uint8_t*>(rx_iov_[i].iov_base);
      HandleDatagram(std::span<uint8_t>(data, rx_msgs_[i].msg_len),
                     (rx_msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0, multicast_socket);
    }
    handled += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < want) break;  // the socket is empty
  }
  return handled;
}

void UdpTransport::HandleDatagram(std::span<uint8_t> datagram, bool truncated,
                                  bool multicast_socket) {
  // Authenticated frames start with the core's header in clear; encrypted
  // ones only show it once opened, so their looped-back copies cost a
  // decryption before they are recognised (multicast mode only).
  if (multicast_socket && !truncated && !auth_->encrypts() && datagram.size() >= kSenderEndBytes &&
      HeaderSender(datagram) == self_) {
    return;  // our own multicast, looped back
  }
  if (truncated || datagram.size() < kSenderEndBytes + auth_->overhead_bytes()) {
    ++counters_.datagrams_received;
    ++counters_.drop_malformed;
    return;
  }
  const std::optional<std::span<const uint8_t>> frame = auth_->Open(datagram);
  if (multicast_socket && frame.has_value() && auth_->encrypts() && HeaderSender(*frame) == self_) {
    return;  // our own multicast, looped back
  }
  ++counters_.datagrams_received;
  if (!frame.has_value()) {
    ++counters_.drop_auth;  // wrong key, other mode (encrypted or not), or modified
    return;
  }
  receiver_->OnFrame(*frame);
}

bool UdpTransport::WaitWritable(int fd) {
  pollfd p{fd, POLLOUT, 0};
  return ::poll(&p, 1, 5) > 0;  // a full send buffer drains in microseconds
}

uint8_t* UdpTransport::Stage(std::span<const uint8_t> frame, size_t destinations) {
  const size_t len = frame.size() + auth_->overhead_bytes();
  if (len > kTxArenaBytes || destinations > kTxBatch) return nullptr;
  // Make room for the datagram and all its queue entries up front, so that
  // no flush can recycle the arena while the entries are being queued.
  if (tx_arena_used_ + len > kTxArenaBytes || tx_count_ + destinations > kTxBatch) Flush();
  uint8_t* d = tx_arena_.data() + tx_arena_used_;
  if (!auth_->Seal(frame, d)) return nullptr;
  tx_arena_used_ += len;
  return d;
}

void UdpTransport::Queue(const sockaddr_in* to, uint8_t* datagram, size_t len) {
  tx_iov_[tx_count_] = iovec{datagram, len};
  msghdr& h = tx_msgs_[tx_count_].msg_hdr;
  h = msghdr{};
  h.msg_name = const_cast<sockaddr_in*>(to);
  h.msg_namelen = sizeof(sockaddr_in);
  h.msg_iov = &tx_iov_[tx_count_];
  h.msg_iovlen = 1;
  ++tx_count_;
}

void UdpTransport::SendTo(NodeId to, std::span<const uint8_t> frame) {
  if (closed_) return;
  auto it = std::lower_bound(peers_.begin(), peers_.end(), to,
                             [](const PeerAddress& p, NodeId id) { return p.id < id; });
  uint8_t* d = it != peers_.end() && it->id == to ? Stage(frame, 1) : nullptr;
  if (d == nullptr) {
    ++counters_.send_errors;
    return;
  }
  Queue(&it->addr, d, frame.size() + auth_->overhead_bytes());
  Flush();
}

void UdpTransport::SendToAll(std::span<const uint8_t> frame) {
  if (closed_) return;
  uint8_t* d = Stage(frame, multicast_mode_ ? 1 : peers_.size());
  if (d == nullptr) {
    ++counters_.send_errors;
    return;
  }
  const size_t len = frame.size() + auth_->overhead_bytes();
  if (multicast_mode_) {
    Queue(&group_, d, len);
  } else {
    for (const PeerAddress& p : peers_) Queue(&p.addr, d, len);
  }
}

void UdpTransport::Flush() {
  const int fd = ucast_.native_handle();
  size_t done = 0;
  bool waited = false;
  while (done < tx_count_ && !closed_) {
    const int n = ::sendmmsg(fd, tx_msgs_.data() + done, static_cast<unsigned>(tx_count_ - done),
                             MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      counters_.datagrams_sent += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) && !waited &&
        WaitWritable(fd)) {
      waited = true;  // a full send buffer drains in microseconds; wait once
      continue;
    }
    // This datagram failed (buffer still full, no route, ...): skip it, keep
    // the others. The protocol recovers it like a lost packet.
    ++counters_.send_errors;
    ++done;
  }
  tx_count_ = 0;
  tx_arena_used_ = 0;
}

}  // namespace totem::runtime

// The runtime's UDP transport (ARCHITECTURE.md 3.5, 3.6): the token and, in
// unicast mode, data frames go to each peer's own socket (a datagram per
// peer, batched with sendmmsg); in multicast mode data frames go to one
// group. Every datagram is the core's frame followed by its HMAC tag, or
// with TransportConfig::encrypt the frame encrypted with AES-256-GCM
// (auth.h); datagrams that fail verification or decryption are dropped and
// counted as drop_auth.
//
// Receiving waits for readiness through Boost.Asio and then drains the
// sockets with non-blocking recvmmsg into preallocated buffers, so the hot
// path neither allocates nor goes back to the event loop per datagram. The
// multicast socket is drained before the unicast one: data frames sent
// before a token are then handled before it, which avoids needless
// retransmission requests. In multicast mode a node's own looped-back
// frames are recognised by the sender id in the core's header and dropped
// (not counted as errors).
//
// Everything here runs on the node's I/O thread; nothing is thread-safe.
#ifndef TOTEM_RUNTIME_UDP_TRANSPORT_H_
#define TOTEM_RUNTIME_UDP_TRANSPORT_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "auth.h"
#include "totem/config.h"
#include "totem/status.h"
#include "totem/types.h"

namespace totem::runtime {

// What the transport counts; the node folds these into totem::Counters.
struct TransportCounters {
  uint64_t datagrams_sent = 0;
  uint64_t datagrams_received = 0;
  uint64_t send_errors = 0;
  uint64_t drop_auth = 0;       // failed the HMAC check or AES-GCM decryption
  uint64_t drop_malformed = 0;  // too short to hold a frame + tag, or larger than the buffer
};

class UdpTransport {
 public:
  class Receiver {
   public:
    virtual ~Receiver() = default;
    // An authenticated frame (tag removed); valid only during the call.
    virtual void OnFrame(std::span<const uint8_t> frame) = 0;
    // Called after each batch of received datagrams.
    virtual void OnReceiveBatchDone() = 0;
  };

  // Opens and binds the sockets. Errors: kIoError (socket, bind, join
  // failed), kInvalidArgument (bad key). `config` must have validated.
  static StatusOr<std::unique_ptr<UdpTransport>> Open(boost::asio::io_context& io,
                                                      const TransportConfig& config, NodeId self,
                                                      std::string_view key);
  ~UdpTransport();
  UdpTransport(const UdpTransport&) = delete;
  UdpTransport& operator=(const UdpTransport&) = delete;

  // Starts waiting for datagrams; `receiver` must outlive the transport's
  // use of the io_context. Call on the I/O thread.
  void StartReceiving(Receiver* receiver);

  // Sends `frame` (plus tag) to one peer, at once: everything queued by
  // SendToAll goes out first, in order, in the same sendmmsg call. Failures
  // are counted, never fatal: the protocol retransmits.
  void SendTo(NodeId to, std::span<const uint8_t> frame);
  // Queues `frame` for every other peer (unicast mode) or the group. Queued
  // datagrams leave at the next SendTo or Flush, or when the queue fills:
  // the frames of one token visit cost one system call, not one per frame.
  void SendToAll(std::span<const uint8_t> frame);
  // Sends everything queued. The node calls it after every unit of work.
  void Flush();

  uint16_t bound_port() const { return bound_port_; }
  const TransportCounters& counters() const { return counters_; }

  // Cancels waits and closes the sockets (after the I/O thread has stopped).
  void Close();

 private:
  static constexpr size_t kRecvBatch = 16;
  static constexpr size_t kRecvBufferBytes = 64 * 1024;
  static constexpr size_t kDatagramsPerPoll = 256;

  struct PeerAddress {
    NodeId id;
    sockaddr_in addr;
  };

  UdpTransport(boost::asio::io_context& io, NodeId self, std::unique_ptr<FrameAuth> auth);
  Status OpenSockets(const TransportConfig& config);
  void ArmWait(bool multicast_socket);
  void Poll();
  // Returns the number of datagrams read (kDatagramsPerPoll: maybe more).
  size_t Drain(int fd, bool multicast_socket);
  // Opens `datagram` in place (decrypting it when encrypting).
  void HandleDatagram(std::span<uint8_t> datagram, bool truncated, bool multicast_socket);
  // Copies `frame` and its tag into the send arena, first flushing if the
  // arena or the queue lacks room for `destinations` entries; nullptr if the
  // frame cannot be sent at all.
  uint8_t* Stage(std::span<const uint8_t> frame, size_t destinations);
  // Adds an entry; Stage made room for it.
  void Queue(const sockaddr_in* to, uint8_t* datagram, size_t len);
  static bool WaitWritable(int fd);

  boost::asio::io_context& io_;
  const NodeId self_;
  std::unique_ptr<FrameAuth> auth_;
  boost::asio::ip::udp::socket ucast_;
  boost::asio::ip::udp::socket mcast_;
  bool multicast_mode_ = false;
  uint16_t bound_port_ = 0;
  Receiver* receiver_ = nullptr;
  bool waiting_[2] = {false, false};  // [0] unicast socket, [1] multicast socket
  bool poll_posted_ = false;
  bool closed_ = false;

  std::vector<PeerAddress> peers_;  // every peer except this node, sorted by id
  sockaddr_in group_{};

  // Send queue, reused for every batch: datagrams (frame + tag) are staged
  // in one preallocated arena and described by tx_msgs_ / tx_iov_.
  static constexpr size_t kTxBatch = 256;
  static constexpr size_t kTxArenaBytes = 512 * 1024;
  std::vector<uint8_t> tx_arena_;
  size_t tx_arena_used_ = 0;
  std::vector<mmsghdr> tx_msgs_;
  std::vector<iovec> tx_iov_;
  size_t tx_count_ = 0;

  // Receive buffers, reused for every batch.
  std::vector<uint8_t> rx_storage_;
  iovec rx_iov_[kRecvBatch] = {};
  mmsghdr rx_msgs_[kRecvBatch] = {};

  TransportCounters counters_;
};

}  // namespace totem::runtime

#endif  // TOTEM_RUNTIME_UDP_TRANSPORT_H_

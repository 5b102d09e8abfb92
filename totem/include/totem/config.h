// Configuration of a Totem node: the ordering protocol's parameters
// (RingConfig, used by the pure core) and the runtime's transport
// (TransportConfig). Each has documented defaults and a Validate() that
// rejects nonsense with a message naming the field; the library refuses to
// start from a config that does not validate.
#ifndef TOTEM_CONFIG_H_
#define TOTEM_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "totem/status.h"
#include "totem/types.h"

namespace totem {

// Parameters of the single-ring ordering protocol.
struct RingConfig {
  NodeId node_id = kNoNode;  // this processor; must be in `members`
  // Every processor that may belong to the ring (sorted or not; duplicates
  // rejected). The membership protocol forms the ring from those that are
  // up and reachable; joins and merge announcements go to all of them.
  std::vector<NodeId> members;

  // Flow control (Totem paper): at most `window_size` new or retransmitted
  // frames by all processors in one token rotation, at most
  // `max_messages_per_visit` by one processor on one visit, shared by backlog.
  uint32_t window_size = 256;
  uint32_t max_messages_per_visit = 64;

  // Largest token or data frame the core emits, in bytes, including the
  // core's header but excluding the transport's authentication tag. Keep it
  // below the path MTU minus IP/UDP headers and the tag (1500 - 28 - 32 =
  // 1440). Membership frames (join, commit token) grow by 41 bytes per
  // processor and exceed 1400 bytes beyond 33 processors; they are rare and
  // may travel as fragmented IP datagrams (at most ~10.5 KB for 256).
  uint32_t max_frame_bytes = 1400;

  // Packing (Friedman & van Renesse): put several queued messages into one
  // frame. When off, every frame carries at most one message (or fragment).
  bool packing = true;

  uint32_t max_message_bytes = 1u << 20;  // largest application message
  uint64_t max_pending_bytes =
      2u << 20;  // bound of the submit queue (queueing latency under saturation grows with it)
  uint32_t receive_buffer_frames = 16384;  // retransmission / receive window, power of two
  uint32_t max_rtr_entries = 128;          // retransmission requests carried by a token

  // Timers. Token retransmission re-sends the last token this node forwarded
  // until a newer one comes back; the idle representative holds the token
  // for `token_hold_us` once nothing has been sent for
  // `idle_rotations_before_hold` rotations (0 disables holding).
  uint32_t token_retransmit_us = 10000;
  uint32_t token_hold_us = 8000;
  uint32_t idle_rotations_before_hold = 8;

  // Membership. No valid token for token_timeout_us (plus
  // token_timeout_per_node_us for every member beyond three) and the ring
  // is declared broken: the processor gathers a new membership. Joins are
  // re-sent every join_timeout_us; members that have not agreed after
  // consensus_timeout_us are declared failed. An idle representative
  // announces its ring every merge_timeout_us so partitions remerge.
  uint32_t token_timeout_us = 50000;
  uint32_t token_timeout_per_node_us = 5000;
  uint32_t join_timeout_us = 10000;
  uint32_t consensus_timeout_us = 60000;
  uint32_t merge_timeout_us = 100000;
  // A member that holds the token's aru down without any progress for this
  // long keeps failing to receive and is excluded from the ring.
  uint32_t fail_to_recv_us = 1000000;

  // token_timeout_us scaled for `ring_size` members.
  uint64_t TokenTimeoutUs(size_t ring_size) const;

  Status Validate() const;
};

enum class TransportMode { kUnicast, kMulticast };

struct Peer {
  NodeId id = kNoNode;
  std::string host;  // numeric IPv4 address
  uint16_t port = 0;
};

// How the runtime reaches the other processors. The token is always sent by
// unicast; data frames go either to every peer (kUnicast, a datagram per
// peer: works in clouds and containers) or to one multicast group.
struct TransportConfig {
  TransportMode mode = TransportMode::kUnicast;
  // Every processor's unicast address, this node's included (it binds to its
  // own entry). Used for the token in both modes, and for data in kUnicast.
  std::vector<Peer> peers;
  // kMulticast only: group address, port and the local interface address.
  std::string mcast_group = "239.192.77.1";
  uint16_t mcast_port = 0;
  std::string mcast_interface = "0.0.0.0";
  uint8_t mcast_ttl = 1;
  bool mcast_loop = true;  // needed when several nodes share one host

  int socket_buffer_bytes = 4 << 20;  // SO_SNDBUF / SO_RCVBUF requested
  // Shared cluster key authenticating every frame (HMAC-SHA256). Read from
  // `key_file` (made by `totem-keygen`) when `key` is empty.
  std::string key_file;
  std::string key;  // raw bytes; at least 16
  // Encrypt every frame (AES-256-GCM with a key derived from `key`, a
  // random nonce per frame) instead of only authenticating it. Every member
  // of a ring must agree: frames of the other mode are dropped as failing
  // authentication, so mixed nodes never form a ring. Costs 28 bytes per
  // datagram (instead of the HMAC's 32) and the cipher's CPU time.
  bool encrypt = false;

  Status Validate(NodeId self) const;
};

struct NodeConfig {
  RingConfig ring;
  TransportConfig transport;
  // Directory of the node's durable state: the ring sequence number, so ring
  // ids keep increasing across restarts (see Node in node.h). Created (one
  // level, mode 0700) if missing; locked while the node runs, so two nodes
  // cannot share it. Empty: nothing is persisted, and every start begins
  // from the wall clock (seconds since the epoch << 20), which is safe only
  // while the clock moves forward between runs.
  std::string state_dir;
  Status Validate() const;
};

}  // namespace totem

#endif  // TOTEM_CONFIG_H_

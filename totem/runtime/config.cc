// Validation of the runtime's configuration (config.h): TransportConfig and
// the NodeConfig that ties it to the ring. RingConfig::Validate lives with
// the core. Every message names the offending field.
#include "totem/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <set>
#include <string>

namespace totem {

namespace {

bool ParseIpv4(const std::string& host, in_addr* out) {
  return ::inet_pton(AF_INET, host.c_str(), out) == 1;
}

constexpr int kMinSocketBufferBytes = 64 * 1024;
constexpr int kMaxSocketBufferBytes = 1 << 30;
constexpr size_t kMinKeyBytes = 16;
// PATH_MAX minus room for the file names inside the directory.
constexpr size_t kMaxStateDirBytes = 4000;

}  // namespace

Status TransportConfig::Validate(NodeId self) const {
  if (self == kNoNode) return InvalidArgument("transport: node id 0 is reserved");
  if (peers.empty()) return InvalidArgument("transport.peers: empty; list every ring member");
  std::set<NodeId> seen;
  std::set<std::pair<std::string, uint16_t>> addresses;
  bool found_self = false;
  for (const Peer& p : peers) {
    const std::string who = "transport.peers: node " + std::to_string(p.id);
    if (p.id == kNoNode) return InvalidArgument("transport.peers: node id 0 is reserved");
    if (!seen.insert(p.id).second) return InvalidArgument(who + " is listed more than once");
    in_addr addr{};
    if (!ParseIpv4(p.host, &addr)) {
      return InvalidArgument(who + ": host '" + p.host + "' is not a numeric IPv4 address");
    }
    if (p.id == self) {
      found_self = true;  // port 0: bind an ephemeral port (tests)
    } else if (p.port == 0) {
      return InvalidArgument(who + ": port 0 is only allowed for this node's own entry");
    }
    if (p.port != 0 && !addresses.insert({p.host, p.port}).second) {
      return InvalidArgument(who + ": address " + p.host + ":" + std::to_string(p.port) +
                             " is used by another peer");
    }
  }
  if (!found_self) {
    return InvalidArgument("transport.peers: this node (" + std::to_string(self) +
                           ") has no entry; it binds to its own address");
  }
  if (mode == TransportMode::kMulticast) {
    in_addr group{};
    if (!ParseIpv4(mcast_group, &group)) {
      return InvalidArgument("transport.mcast_group: '" + mcast_group +
                             "' is not a numeric IPv4 address");
    }
    if ((ntohl(group.s_addr) >> 28) != 0xE) {
      return InvalidArgument("transport.mcast_group: " + mcast_group +
                             " is not a multicast address (224.0.0.0/4)");
    }
    if (mcast_port == 0) return InvalidArgument("transport.mcast_port: must be non-zero");
    in_addr iface{};
    if (!ParseIpv4(mcast_interface, &iface)) {
      return InvalidArgument("transport.mcast_interface: '" + mcast_interface +
                             "' is not a numeric IPv4 address");
    }
    if (mcast_ttl == 0) return InvalidArgument("transport.mcast_ttl: must be at least 1");
  }
  if (socket_buffer_bytes != 0 && (socket_buffer_bytes < kMinSocketBufferBytes ||
                                   socket_buffer_bytes > kMaxSocketBufferBytes)) {
    return InvalidArgument("transport.socket_buffer_bytes: " + std::to_string(socket_buffer_bytes) +
                           " is outside [" + std::to_string(kMinSocketBufferBytes) + ", " +
                           std::to_string(kMaxSocketBufferBytes) + "] (0 keeps the OS default)");
  }
  if (key.empty() && key_file.empty()) {
    return InvalidArgument("transport.key / transport.key_file: no cluster key given");
  }
  if (!key.empty() && key.size() < kMinKeyBytes) {
    return InvalidArgument("transport.key: " + std::to_string(key.size()) + " bytes; at least " +
                           std::to_string(kMinKeyBytes) + " are required");
  }
  return Status::Ok();
}

Status NodeConfig::Validate() const {
  if (Status st = ring.Validate(); !st.ok()) return st;
  if (Status st = transport.Validate(ring.node_id); !st.ok()) return st;
  // Every ring member needs exactly one address, and nothing else may have one.
  for (NodeId m : ring.members) {
    const auto n = std::count_if(transport.peers.begin(), transport.peers.end(),
                                 [m](const Peer& p) { return p.id == m; });
    if (n == 0) {
      return InvalidArgument("transport.peers: node " + std::to_string(m) +
                             " is a ring member but has no peer address");
    }
  }
  for (const Peer& p : transport.peers) {
    if (std::find(ring.members.begin(), ring.members.end(), p.id) == ring.members.end()) {
      return InvalidArgument("transport.peers: node " + std::to_string(p.id) +
                             " has an address but is not a ring member (ring.members)");
    }
  }
  if (state_dir.find('\0') != std::string::npos) {
    return InvalidArgument("state_dir: contains a NUL byte");
  }
  if (state_dir.size() > kMaxStateDirBytes) {
    return InvalidArgument("state_dir: longer than " + std::to_string(kMaxStateDirBytes) +
                           " bytes");
  }
  return Status::Ok();
}

}  // namespace totem

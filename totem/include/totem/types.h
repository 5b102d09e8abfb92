// Basic vocabulary of the Totem library: node ids, ring ids (which double as
// configuration ids), delivery guarantees, and the events the library hands
// to the application. Everything here is plain data with no behaviour.
#ifndef TOTEM_TYPES_H_
#define TOTEM_TYPES_H_

#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace totem {

// A processor's identity on the ring. 0 is reserved ("nobody").
using NodeId = uint32_t;
inline constexpr NodeId kNoNode = 0;

// A ring id names one ring instance: its representative (the lowest node id
// in the membership) and a ring sequence number that only ever increases.
// Every configuration the application sees is identified by the ring id of
// the ring that delivered it.
struct RingId {
  NodeId rep = kNoNode;
  uint64_t seq = 0;

  friend auto operator<=>(const RingId&, const RingId&) = default;
  std::string ToString() const;
};
using ConfigurationId = RingId;

// The two delivery services of the paper.
//  kAgreed: delivered once this node has it and every earlier message of the
//           total order (never past a gap).
//  kSafe:   additionally, every member of the configuration is known to have
//           received it (and all earlier messages) before it is delivered.
enum class Guarantee : uint8_t { kAgreed = 1, kSafe = 2 };
const char* GuaranteeName(Guarantee g);

// One application message delivered in the total order. `payload` is only
// valid for the duration of the callback.
struct Delivery {
  ConfigurationId config_id;  // configuration the message is delivered in
  NodeId sender = kNoNode;    // node that submitted the message
  Guarantee guarantee = Guarantee::kAgreed;
  uint64_t frame_seq = 0;  // ring sequence number of the (last) frame carrying it
  std::span<const uint8_t> payload;
};

enum class ConfigurationKind : uint8_t { kRegular = 1, kTransitional = 2 };

// A configuration change. In this release membership is a static list, so a
// node sees exactly one regular configuration (at start); the transitional /
// regular pair of extended virtual synchrony arrives with the membership
// protocol.
struct ConfigurationEvent {
  ConfigurationKind kind = ConfigurationKind::kRegular;
  ConfigurationId id;
  std::vector<NodeId> members;  // sorted ascending
  std::vector<NodeId> joined;   // members not in the previous configuration
  std::vector<NodeId> left;     // previous members not in this one
};

}  // namespace totem

#endif  // TOTEM_TYPES_H_

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

enum class ConfigurationKind : uint8_t { kRegular = 1, kTransitional = 2 };
const char* ConfigurationKindName(ConfigurationKind kind);

// One application message delivered in the total order. `payload` is only
// valid for the duration of the callback.
struct Delivery {
  // The configuration the message is delivered in: a regular configuration
  // (config_kind == kRegular, config_id its ring id), or the transitional
  // configuration that precedes the regular configuration `config_id`
  // (config_kind == kTransitional). See ConfigurationEvent.
  ConfigurationId config_id;
  NodeId sender = kNoNode;  // node that submitted the message
  ConfigurationKind config_kind = ConfigurationKind::kRegular;
  Guarantee guarantee = Guarantee::kAgreed;
  uint64_t frame_seq = 0;  // ring sequence number of the (last) frame carrying it
  std::span<const uint8_t> payload;
};

// A configuration change, as extended virtual synchrony delivers it. When
// the membership changes, a processor that was in a regular configuration
// first receives a transitional configuration (the members of its old
// configuration that move with it into the new one; id = the new regular
// configuration's id, kind = kTransitional), then the old configuration's
// remaining messages that can still be delivered (each marked with that
// transitional configuration), then the new regular configuration. A
// processor that starts fresh receives only the regular configuration.
struct ConfigurationEvent {
  ConfigurationKind kind = ConfigurationKind::kRegular;
  ConfigurationId id;
  std::vector<NodeId> members;  // sorted ascending
  std::vector<NodeId> joined;   // members not in the previous configuration
  std::vector<NodeId> left;     // previous members not in this one
};

}  // namespace totem

#endif  // TOTEM_TYPES_H_

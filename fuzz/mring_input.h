// The multi-ring fuzz target's network and input format (fuzz_multi_ring.cc
// reads it, fuzz_seeds.cc writes it). The fuzzed processor is node 5, a
// gateway on rings 1 and 2 of a network of rings {1, 2, 3} joined by
// gateways 5 (1-2), 6 (2-3) and 7 (1-3): a cycle, so forwarding, the
// spanning tree, take-over and the view tables all run.
//
// The input is a sequence of records; the tag byte modulo 5 picks the kind:
//   0 delivery:      flags u8 | len u16 LE | len bytes (fewer if the input
//                    ends): a ring delivery of those bytes in the ring's
//                    current configuration
//   1 configuration: flags u8 | seq u8 | member mask u8 (bit i = node i+1;
//                    node 5 is always a member): id {lowest member, seq}
//   2 timer:         delta u8: time advances delta ms, then the layer's timer
//                    fires
//   3 loopback:      flags u8: the oldest of node 5's own submissions to the
//                    ring not yet delivered comes back as a delivery (bit 1:
//                    all of them)
//   4 submit:        dest mask u8 (bit i < 3: ring i+1; bit 7: safe) |
//                    len u8 | len payload bytes
// Delivery flags: bit 0 ring (0: ring 1, 1: ring 2), bit 1 transitional,
// bit 2 safe, bits 3-5 sender - 1. Configuration flags: bit 0 ring, bit 1
// transitional. An incomplete record ends the input.
#ifndef TOTEMKV_FUZZ_MRING_INPUT_H_
#define TOTEMKV_FUZZ_MRING_INPUT_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "totem/core/multi_ring.h"

namespace totemkv::fuzz {

inline constexpr totem::NodeId kMringSelf = 5;

enum MringTag : uint8_t {
  kMringDelivery = 0,
  kMringConfiguration = 1,
  kMringTimer = 2,
  kMringLoopback = 3,
  kMringSubmit = 4,
};

inline totem::core::MultiRingConfig MringConfig(totem::NodeId self,
                                                std::vector<totem::core::RingNumber> local) {
  totem::core::MultiRingConfig c;
  c.node_id = self;
  c.local_rings = std::move(local);
  c.rings = {1, 2, 3};
  c.links = {{5, 1, 2}, {6, 2, 3}, {7, 1, 3}};
  c.guarantee_interval_us = 20000;
  return c;
}

inline uint8_t MringMask(const std::vector<totem::NodeId>& members) {
  uint8_t mask = 0;
  for (totem::NodeId n : members) {
    if (n >= 1 && n <= 8) mask = static_cast<uint8_t>(mask | (1u << (n - 1)));
  }
  return mask;
}

// ring_index: 0 for ring 1, 1 for ring 2.
inline void EncodeMringDelivery(int ring_index, bool transitional, bool safe, totem::NodeId sender,
                                std::span<const uint8_t> bytes, std::string* out) {
  const size_t len = bytes.size() > 0xffff ? 0xffff : bytes.size();
  out->push_back(kMringDelivery);
  out->push_back(static_cast<char>(ring_index | (transitional ? 2 : 0) | (safe ? 4 : 0) |
                                   (((sender - 1) & 7) << 3)));
  out->push_back(static_cast<char>(len & 0xff));
  out->push_back(static_cast<char>(len >> 8));
  out->append(reinterpret_cast<const char*>(bytes.data()), len);
}

inline void EncodeMringConfiguration(int ring_index, bool transitional, uint8_t seq,
                                     const std::vector<totem::NodeId>& members, std::string* out) {
  out->push_back(kMringConfiguration);
  out->push_back(static_cast<char>(ring_index | (transitional ? 2 : 0)));
  out->push_back(static_cast<char>(seq));
  out->push_back(static_cast<char>(MringMask(members)));
}

inline void EncodeMringTimer(uint8_t delta_ms, std::string* out) {
  out->push_back(kMringTimer);
  out->push_back(static_cast<char>(delta_ms));
}

}  // namespace totemkv::fuzz

#endif  // TOTEMKV_FUZZ_MRING_INPUT_H_

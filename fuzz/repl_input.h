// The byte format the replication-engine fuzz target reads (and the seed
// generator writes): a sequence of records, each one engine Input.
//   tag u8 even: configuration: kind u8 (odd: regular, even: transitional) |
//                ring rep u8 | ring seq u8 | member mask u8 (bit i = node i+1)
//   tag u8 odd:  delivery in the last configuration: sender u8 |
//                kind u8 (odd: regular, even: transitional) | len u16 LE |
//                len payload bytes (fewer if the input ends)
// An incomplete record ends the input.
#ifndef TOTEMKV_FUZZ_REPL_INPUT_H_
#define TOTEMKV_FUZZ_REPL_INPUT_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "kvstore/replication.h"

namespace totemkv::fuzz {

inline std::vector<::kvstore::repl::Input> DecodeReplInputs(const uint8_t* data, size_t size) {
  using ::kvstore::repl::Input;
  std::vector<Input> inputs;
  totem::ConfigurationEvent last;
  size_t pos = 0;
  while (pos < size) {
    uint8_t tag = data[pos++];
    Input in;
    if (tag % 2 == 0) {
      if (size - pos < 4) break;
      in.kind = Input::Kind::kConfiguration;
      totem::ConfigurationEvent& c = in.configuration;
      c.kind = data[pos] % 2 == 1 ? totem::ConfigurationKind::kRegular
                                  : totem::ConfigurationKind::kTransitional;
      c.id = totem::RingId{data[pos + 1], data[pos + 2]};
      for (int i = 0; i < 8; ++i) {
        if ((data[pos + 3] >> i) & 1) c.members.push_back(static_cast<totem::NodeId>(i + 1));
      }
      pos += 4;
      for (totem::NodeId n : c.members) {
        if (!std::binary_search(last.members.begin(), last.members.end(), n)) c.joined.push_back(n);
      }
      for (totem::NodeId n : last.members) {
        if (!std::binary_search(c.members.begin(), c.members.end(), n)) c.left.push_back(n);
      }
      last = c;
    } else {
      if (size - pos < 4) break;
      in.kind = Input::Kind::kDelivery;
      in.sender = data[pos];
      in.config_kind = data[pos + 1] % 2 == 1 ? totem::ConfigurationKind::kRegular
                                              : totem::ConfigurationKind::kTransitional;
      size_t len = data[pos + 2] | (static_cast<size_t>(data[pos + 3]) << 8);
      pos += 4;
      len = std::min(len, size - pos);
      in.ring = last.id;
      in.payload.assign(reinterpret_cast<const char*>(data + pos), len);
      pos += len;
    }
    inputs.push_back(std::move(in));
  }
  return inputs;
}

inline void EncodeReplConfiguration(const totem::ConfigurationEvent& c, std::string* out) {
  uint8_t mask = 0;
  for (totem::NodeId n : c.members) mask = static_cast<uint8_t>(mask | (1u << (n - 1)));
  out->push_back(0);
  out->push_back(c.kind == totem::ConfigurationKind::kRegular ? 1 : 2);
  out->push_back(static_cast<char>(c.id.rep));
  out->push_back(static_cast<char>(c.id.seq));
  out->push_back(static_cast<char>(mask));
}

inline void EncodeReplDelivery(totem::NodeId sender, totem::ConfigurationKind kind,
                               const std::string& payload, std::string* out) {
  out->push_back(1);
  out->push_back(static_cast<char>(sender));
  out->push_back(kind == totem::ConfigurationKind::kRegular ? 1 : 2);
  out->push_back(static_cast<char>(payload.size() & 0xff));
  out->push_back(static_cast<char>((payload.size() >> 8) & 0xff));
  *out += payload.substr(0, 0xffff);
}

}  // namespace totemkv::fuzz

#endif  // TOTEMKV_FUZZ_REPL_INPUT_H_

// The simulator's checker (see checker.h): one method per kind of
// observation, each stating the guarantees it verifies.
#include "totem/sim/checker.h"

#include <algorithm>
#include <sstream>
#include <utility>

#include "totem/sim/random.h"

namespace totem::sim {

namespace {

void PutU32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t GetLE(std::span<const uint8_t> b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(b[at + i]) << (8 * i);
  return v;
}

std::string KeyString(MessageKey k) {
  return "msg(" + std::to_string(k.sender) + "#" + std::to_string(k.index) + ")";
}

std::string ViewString(const CoreView& v) {
  std::ostringstream s;
  s << "ring=" << v.ring_id.rep << "/" << v.ring_id.seq << " aru=" << v.aru
    << " delivered_up_to=" << v.delivered_up_to << " safe_up_to=" << v.safe_up_to
    << " high_seq=" << v.high_seq << " buffered=" << v.buffered_frames;
  return s.str();
}

}  // namespace

std::vector<uint8_t> MakePayload(uint64_t seed, MessageKey key, size_t size) {
  size = std::max(size, kPayloadHeaderBytes);
  std::vector<uint8_t> p(size);
  PutU32(p, 0, kPayloadMagic);
  PutU32(p, 4, key.sender);
  PutU64(p, 8, key.index);
  uint64_t state = Mix64(seed ^ Mix64((static_cast<uint64_t>(key.sender) << 40) ^ key.index));
  for (size_t i = kPayloadHeaderBytes; i < size; i += 8) {
    uint64_t r = SplitMix64(state);
    for (size_t j = i; j < std::min(size, i + 8); ++j) {
      p[j] = static_cast<uint8_t>(r);
      r >>= 8;
    }
  }
  return p;
}

std::optional<MessageKey> ParsePayload(std::span<const uint8_t> payload) {
  if (payload.size() < kPayloadHeaderBytes) return std::nullopt;
  if (GetLE(payload, 0, 4) != kPayloadMagic) return std::nullopt;
  MessageKey k;
  k.sender = static_cast<NodeId>(GetLE(payload, 4, 4));
  k.index = GetLE(payload, 8, 8);
  return k;
}

Checker::Checker(std::vector<NodeId> members, uint32_t receive_buffer_frames)
    : members_(std::move(members)), receive_buffer_frames_(receive_buffer_frames) {
  std::sort(members_.begin(), members_.end());
  for (NodeId m : members_) nodes_[m];
}

void Checker::Violation(NodeId node, const std::string& what) {
  ++violations_;
  if (violations_ == 1) {
    first_violation_ =
        "t=" + std::to_string(now_us_) + "us node=" + std::to_string(node) + ": " + what;
  }
}

void Checker::Fail(const std::string& what) {
  ++violations_;
  if (violations_ == 1) first_violation_ = "t=" + std::to_string(now_us_) + "us: " + what;
}

Checker::NodeState* Checker::StateOf(NodeId node, const char* what) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) {
    Violation(node, std::string(what) + " at a node that is not a member");
    return nullptr;
  }
  return &it->second;
}

void Checker::OnSubmitted(MessageKey key, Guarantee guarantee, std::vector<uint8_t> payload) {
  auto& list = submitted_[key.sender];
  if (key.index != list.size() + 1) {
    Fail("workload bug: " + KeyString(key) + " registered out of sequence");
    return;
  }
  list.push_back(Submitted{guarantee, std::move(payload)});
  ++submitted_count_;
}

void Checker::Withdraw(MessageKey key) {
  auto& list = submitted_[key.sender];
  if (key.index != list.size() || list.empty()) {
    Fail("workload bug: withdrawing " + KeyString(key) + " which is not the latest");
    return;
  }
  list.pop_back();
  --submitted_count_;
  // A core that delivered it during the refused Submit invented a message.
  for (const auto& [node, st] : nodes_) {
    auto it = st.next_index.find(key.sender);
    if (it != st.next_index.end() && it->second > key.index) {
      Violation(node, "delivered " + KeyString(key) + " although Submit refused it");
    }
  }
}

void Checker::OnConfiguration(NodeId node, const ConfigurationEvent& event, const CoreView& core) {
  NodeState* st = StateOf(node, "configuration");
  if (st == nullptr) return;
  if (st->configured) {
    Violation(node,
              "second configuration event (kind=" + std::to_string(static_cast<int>(event.kind)) +
                  "); membership is static in this release");
    return;
  }
  if (event.kind != ConfigurationKind::kRegular) {
    Violation(node, "first configuration event is not regular");
  }
  if (event.members != members_) {
    Violation(node, "initial configuration does not list exactly the members (got " +
                        std::to_string(event.members.size()) + " members)");
  }
  if (event.joined != members_ || !event.left.empty()) {
    Violation(node, "initial configuration: joined must be every member and left empty");
  }
  if (event.id != core.ring_id) {
    Violation(node, "configuration id " + event.id.ToString() + " != core ring id " +
                        core.ring_id.ToString());
  }
  if (st->delivered != 0) Violation(node, "configuration event after deliveries");
  st->configured = true;
  st->config_id = event.id;
}

void Checker::OnDelivery(NodeId node, const Delivery& d, const CoreView& core,
                         bool all_members_received) {
  NodeState* st = StateOf(node, "delivery");
  if (st == nullptr) return;
  ++deliveries_;
  if (!st->configured) {
    Violation(node, "delivery before the initial configuration event");
    return;
  }
  if (d.config_id != st->config_id || d.config_id != core.ring_id) {
    Violation(node, "delivery in configuration " + d.config_id.ToString() +
                        ", node's configuration is " + st->config_id.ToString() +
                        " and core ring id " + core.ring_id.ToString());
  }

  // Identity and integrity: the message must be one that was submitted,
  // byte for byte, with the sender and guarantee it was submitted with.
  std::optional<MessageKey> key = ParsePayload(d.payload);
  if (!key) {
    Violation(node, "invented message: unrecognisable payload of " +
                        std::to_string(d.payload.size()) +
                        " bytes (frame_seq=" + std::to_string(d.frame_seq) + ")");
    return;
  }
  auto sit = submitted_.find(key->sender);
  if (sit == submitted_.end() || key->index == 0 || key->index > sit->second.size()) {
    Violation(node, "invented message: " + KeyString(*key) + " was never submitted");
    return;
  }
  const Submitted& sub = sit->second[key->index - 1];
  if (!std::equal(d.payload.begin(), d.payload.end(), sub.payload.begin(), sub.payload.end())) {
    Violation(node, "payload of " + KeyString(*key) + " differs from what was submitted (" +
                        std::to_string(d.payload.size()) + " vs " +
                        std::to_string(sub.payload.size()) + " bytes)");
  }
  if (d.sender != key->sender) {
    Violation(node, KeyString(*key) + " delivered with sender=" + std::to_string(d.sender));
  }
  if (d.guarantee != sub.guarantee) {
    Violation(node, KeyString(*key) + " submitted " + GuaranteeName(sub.guarantee) +
                        " but delivered " + GuaranteeName(d.guarantee));
  }

  // No duplicates, per-sender FIFO with no gap.
  uint64_t& expected = st->next_index.try_emplace(key->sender, 1).first->second;
  if (key->index < expected) {
    Violation(node, "duplicate delivery of " + KeyString(*key));
  } else if (key->index > expected) {
    Violation(node, "sender FIFO broken: delivered " + KeyString(*key) + " but expected index " +
                        std::to_string(expected) + " next from that sender");
  }
  expected = std::max(expected, key->index + 1);

  // One total order: position p of every node's sequence is the same message.
  const uint64_t pos = st->delivered++;
  if (pos < order_.size()) {
    if (order_[pos] != *key) {
      Violation(node, "total order: position " + std::to_string(pos) + " is " + KeyString(*key) +
                          " here but " + KeyString(order_[pos]) + " at another node");
    }
  } else {
    order_.push_back(*key);
  }

  // Agreed: never past a gap.
  if (d.frame_seq == 0) Violation(node, KeyString(*key) + " delivered with frame_seq=0");
  if (d.frame_seq < st->last_frame_seq) {
    Violation(node, "frame_seq went backwards: " + KeyString(*key) + " in frame " +
                        std::to_string(d.frame_seq) + " after frame " +
                        std::to_string(st->last_frame_seq));
  }
  st->last_frame_seq = std::max(st->last_frame_seq, d.frame_seq);
  if (d.frame_seq > core.aru) {
    Violation(node, KeyString(*key) + " delivered from frame " + std::to_string(d.frame_seq) +
                        " beyond the node's aru: " + ViewString(core));
  }
  if (core.delivered_up_to + 1 < d.frame_seq || core.delivered_up_to > d.frame_seq) {
    Violation(node, KeyString(*key) + " delivered from frame " + std::to_string(d.frame_seq) +
                        " not contiguous with delivered_up_to: " + ViewString(core));
  }

  // Safe: every member has the frame.
  if (d.guarantee == Guarantee::kSafe) {
    if (!all_members_received) {
      Violation(node, "safe " + KeyString(*key) + " delivered from frame " +
                          std::to_string(d.frame_seq) + " before every member received it");
    }
    if (d.frame_seq > core.safe_up_to) {
      Violation(node, "safe " + KeyString(*key) + " delivered from frame " +
                          std::to_string(d.frame_seq) + " above safe_up_to: " + ViewString(core));
    }
  }
}

void Checker::OnStep(NodeId node, const CoreView& core, uint64_t min_aru) {
  NodeState* st = StateOf(node, "step");
  if (st == nullptr) return;
  if (core.buffered_frames > receive_buffer_frames_) {
    Violation(node,
              "receive buffer holds " + std::to_string(core.buffered_frames) +
                  " frames > receive_buffer_frames=" + std::to_string(receive_buffer_frames_));
  }
  if (core.delivered_up_to > core.aru) {
    Violation(node, "delivered_up_to beyond aru: " + ViewString(core));
  }
  if (core.aru > core.high_seq) Violation(node, "aru beyond high_seq: " + ViewString(core));
  if (core.safe_up_to > min_aru) {
    Violation(node, "safe_up_to=" + std::to_string(core.safe_up_to) +
                        " but some member's aru is only " + std::to_string(min_aru));
  }
  if (st->configured && core.ring_id != st->config_id) {
    Violation(node, "ring id changed to " + core.ring_id.ToString());
  }
  if (st->last_view) {
    const CoreView& p = *st->last_view;
    if (core.aru < p.aru || core.delivered_up_to < p.delivered_up_to ||
        core.safe_up_to < p.safe_up_to || core.high_seq < p.high_seq) {
      Violation(node, "a monotonic counter went backwards: before " + ViewString(p) + ", now " +
                          ViewString(core));
    }
  }
  st->last_view = core;
}

void Checker::Finish() {
  for (const auto& [node, st] : nodes_) {
    if (!st.configured) Violation(node, "never delivered the initial configuration");
    if (st.delivered != submitted_count_) {
      // Name the first missing message to make the report actionable.
      std::string missing;
      for (const auto& [sender, list] : submitted_) {
        auto it = st.next_index.find(sender);
        uint64_t next = it == st.next_index.end() ? 1 : it->second;
        if (next <= list.size()) {
          missing = ", first missing " + KeyString(MessageKey{sender, next});
          break;
        }
      }
      Violation(node, "liveness: delivered " + std::to_string(st.delivered) + " of " +
                          std::to_string(submitted_count_) + " messages" + missing +
                          (st.last_view ? "; " + ViewString(*st.last_view) : std::string()));
    }
  }
}

}  // namespace totem::sim

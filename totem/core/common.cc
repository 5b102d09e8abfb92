// Small shared pieces of the public vocabulary: names, ToString, and the
// validation of the ring's protocol parameters.
#include <algorithm>
#include <string>

#include "totem/config.h"
#include "totem/core/output.h"
#include "totem/counters.h"
#include "totem/status.h"
#include "totem/types.h"

namespace totem {

std::string RingId::ToString() const { return std::to_string(rep) + ":" + std::to_string(seq); }

const char* GuaranteeName(Guarantee g) {
  switch (g) {
    case Guarantee::kAgreed:
      return "agreed";
    case Guarantee::kSafe:
      return "safe";
  }
  return "unknown";
}

const char* ConfigurationKindName(ConfigurationKind kind) {
  switch (kind) {
    case ConfigurationKind::kRegular:
      return "regular";
    case ConfigurationKind::kTransitional:
      return "transitional";
  }
  return "unknown";
}

uint64_t RingConfig::TokenTimeoutUs(size_t ring_size) const {
  const uint64_t extra = ring_size > 3 ? ring_size - 3 : 0;
  return token_timeout_us + extra * token_timeout_per_node_us;
}

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case StatusCode::kWouldBlock:
      return "WOULD_BLOCK";
    case StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case StatusCode::kIoError:
      return "IO_ERROR";
    case StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case StatusCode::kInternal:
      return "INTERNAL";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

std::vector<std::pair<std::string_view, uint64_t>> Counters::Fields() const {
  return {
      {"messages_submitted", messages_submitted},
      {"bytes_submitted", bytes_submitted},
      {"submits_would_block", submits_would_block},
      {"messages_delivered", messages_delivered},
      {"bytes_delivered", bytes_delivered},
      {"safe_messages_delivered", safe_messages_delivered},
      {"frames_sent", frames_sent},
      {"frames_received", frames_received},
      {"retransmissions_sent", retransmissions_sent},
      {"retransmit_requests", retransmit_requests},
      {"token_rotations", token_rotations},
      {"tokens_retransmitted", tokens_retransmitted},
      {"token_holds", token_holds},
      {"fragments_sent", fragments_sent},
      {"gathers", gathers},
      {"token_losses", token_losses},
      {"consensus_timeouts", consensus_timeouts},
      {"merges_detected", merges_detected},
      {"configurations_installed", configurations_installed},
      {"failed_to_receive", failed_to_receive},
      {"pauses_detected", pauses_detected},
      {"drop_malformed", drop_malformed},
      {"drop_bad_version", drop_bad_version},
      {"drop_auth", drop_auth},
      {"drop_foreign_ring", drop_foreign_ring},
      {"drop_duplicate_token", drop_duplicate_token},
      {"drop_duplicate_frame", drop_duplicate_frame},
      {"drop_out_of_window", drop_out_of_window},
      {"drop_bad_fragment", drop_bad_fragment},
      {"drop_unknown_sender", drop_unknown_sender},
      {"datagrams_sent", datagrams_sent},
      {"datagrams_received", datagrams_received},
      {"send_errors", send_errors},
  };
}

std::string FormatCounterFields(const std::vector<std::pair<std::string_view, uint64_t>>& fields) {
  std::string s;
  for (const auto& [name, value] : fields) {
    if (!s.empty()) s += ' ';
    s += name;
    s += '=';
    s += std::to_string(value);
  }
  return s;
}

std::string Counters::ToString() const { return FormatCounterFields(Fields()); }

Status RingConfig::Validate() const {
  auto bad = [](const std::string& m) { return InvalidArgument("ring config: " + m); };
  if (node_id == kNoNode) return bad("node_id must be non-zero");
  if (members.empty()) return bad("members must list at least this node");
  if (members.size() > 256) return bad("members: at most 256 processors per ring");
  std::vector<NodeId> sorted = members;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return bad("members contains a duplicate node id");
  }
  if (sorted.front() == kNoNode) return bad("members: node id 0 is reserved");
  if (!std::binary_search(sorted.begin(), sorted.end(), node_id)) {
    return bad("node_id " + std::to_string(node_id) + " is not in members");
  }
  if (window_size == 0) return bad("window_size must be at least 1");
  if (max_messages_per_visit == 0) return bad("max_messages_per_visit must be at least 1");
  if (max_messages_per_visit > window_size) {
    return bad("max_messages_per_visit (" + std::to_string(max_messages_per_visit) +
               ") must not exceed window_size (" + std::to_string(window_size) + ")");
  }
  if (max_frame_bytes < 128 || max_frame_bytes > 65000) {
    return bad("max_frame_bytes must be in [128, 65000], got " + std::to_string(max_frame_bytes));
  }
  if (max_message_bytes == 0 || max_message_bytes > (64u << 20)) {
    return bad("max_message_bytes must be in [1, 64 MiB]");
  }
  if (max_pending_bytes < max_message_bytes) {
    return bad("max_pending_bytes must be at least max_message_bytes");
  }
  if (receive_buffer_frames < 64 || (receive_buffer_frames & (receive_buffer_frames - 1)) != 0 ||
      receive_buffer_frames > (1u << 22)) {
    return bad("receive_buffer_frames must be a power of two in [64, 4194304]");
  }
  if (static_cast<uint64_t>(window_size) * 4 > receive_buffer_frames) {
    return bad("receive_buffer_frames (" + std::to_string(receive_buffer_frames) +
               ") must be at least 4 x window_size (" + std::to_string(window_size) + ")");
  }
  // A token must fit in one frame: header + fixed part + 8 bytes per request.
  const uint64_t token_bytes = 20 + 39 + 8ull * max_rtr_entries;
  if (max_rtr_entries == 0 || token_bytes > max_frame_bytes) {
    return bad("max_rtr_entries must be at least 1 and the token (" + std::to_string(token_bytes) +
               " bytes) must fit in max_frame_bytes");
  }
  if (token_retransmit_us < 100) return bad("token_retransmit_us must be at least 100");
  if (idle_rotations_before_hold != 0) {
    if (idle_rotations_before_hold < 3) {
      return bad("idle_rotations_before_hold must be 0 (never hold) or at least 3");
    }
    if (token_hold_us == 0 || token_hold_us >= token_retransmit_us) {
      return bad("token_hold_us must be in (0, token_retransmit_us)");
    }
  }
  // Membership timeouts must nest: a token normally comes back well within
  // token_timeout_us even after retransmissions and a hold.
  if (token_timeout_us < 2 * token_retransmit_us + token_hold_us) {
    return bad("token_timeout_us (" + std::to_string(token_timeout_us) +
               ") must be at least 2 x token_retransmit_us + token_hold_us");
  }
  if (join_timeout_us < 100 || join_timeout_us >= consensus_timeout_us) {
    return bad("join_timeout_us must be at least 100 and below consensus_timeout_us");
  }
  if (consensus_timeout_us < 2 * join_timeout_us) {
    return bad("consensus_timeout_us must be at least 2 x join_timeout_us");
  }
  if (fail_to_recv_us < 2 * token_timeout_us) {
    return bad("fail_to_recv_us must be at least 2 x token_timeout_us");
  }
  if (merge_timeout_us < join_timeout_us) {
    return bad("merge_timeout_us must be at least join_timeout_us");
  }
  return Status::Ok();
}

namespace core {
const char* TimerName(TimerId id) {
  switch (id) {
    case TimerId::kTokenRetransmit:
      return "token_retransmit";
    case TimerId::kTokenHold:
      return "token_hold";
    case TimerId::kTokenLoss:
      return "token_loss";
    case TimerId::kJoin:
      return "join";
    case TimerId::kConsensus:
      return "consensus";
    case TimerId::kMerge:
      return "merge";
    case TimerId::kCount:
      break;
  }
  return "unknown";
}
}  // namespace core

}  // namespace totem

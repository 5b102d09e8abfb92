// Counters the library keeps for operators and tests. All are monotonically
// increasing totals since the node started. Drops are counted by reason:
// nothing received from the network is ever silently ignored.
#ifndef TOTEM_COUNTERS_H_
#define TOTEM_COUNTERS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace totem {

struct Counters {
  // Application level.
  uint64_t messages_submitted = 0;
  uint64_t bytes_submitted = 0;
  uint64_t submits_would_block = 0;  // Submit refused because the queue is full
  uint64_t messages_delivered = 0;
  uint64_t bytes_delivered = 0;
  uint64_t safe_messages_delivered = 0;

  // Ring level.
  uint64_t frames_sent = 0;           // new data frames this node originated
  uint64_t frames_received = 0;       // data frames accepted into the receive buffer
  uint64_t retransmissions_sent = 0;  // frames re-multicast to serve a request
  uint64_t retransmit_requests = 0;   // sequence numbers this node asked for
  uint64_t token_rotations = 0;       // valid tokens received
  uint64_t tokens_retransmitted = 0;
  uint64_t token_holds = 0;     // times the idle representative held the token
  uint64_t fragments_sent = 0;  // chunks that carried part of a larger message

  // Membership.
  uint64_t gathers = 0;                   // entries into the Gather state
  uint64_t token_losses = 0;              // token loss timeouts
  uint64_t consensus_timeouts = 0;        // members declared failed for not agreeing
  uint64_t merges_detected = 0;           // frames from another ring that started a merge
  uint64_t configurations_installed = 0;  // regular configurations delivered
  uint64_t failed_to_receive = 0;         // members excluded for not receiving
  uint64_t pauses_detected = 0;           // token loss timeouts that fired late (process paused)

  // Dropped input, by reason.
  uint64_t drop_malformed = 0;        // failed to decode (truncated, bad field)
  uint64_t drop_bad_version = 0;      // wrong magic or unsupported version
  uint64_t drop_auth = 0;             // failed authentication (runtime)
  uint64_t drop_foreign_ring = 0;     // frame or token for another ring
  uint64_t drop_duplicate_token = 0;  // token_seq not newer than the last one
  uint64_t drop_duplicate_frame = 0;  // data frame already received
  uint64_t drop_out_of_window = 0;    // beyond the receive buffer; will be re-requested
  uint64_t drop_bad_fragment = 0;     // fragment that does not continue a message
  uint64_t drop_unknown_sender = 0;   // sender id not in the membership

  // Runtime level.
  uint64_t datagrams_sent = 0;
  uint64_t datagrams_received = 0;
  uint64_t send_errors = 0;

  // Every field above as (its C++ name, value), in declaration order: the
  // one list of counter names (ToString, admin GetCounters).
  std::vector<std::pair<std::string_view, uint64_t>> Fields() const;
  std::string ToString() const;  // "key=value key=value ..."
};

// "name=value name=value ..." of a counter list (Counters::Fields and the
// other counter structs' Fields).
std::string FormatCounterFields(const std::vector<std::pair<std::string_view, uint64_t>>& fields);

}  // namespace totem

#endif  // TOTEM_COUNTERS_H_

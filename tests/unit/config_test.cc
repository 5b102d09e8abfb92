// RingConfig validation rejects nonsense with a message naming the field.
#include "totem/config.h"

#include <gtest/gtest.h>

namespace totem {
namespace {

RingConfig Good() {
  RingConfig c;
  c.node_id = 2;
  c.members = {1, 2, 3};
  return c;
}

TEST(RingConfig, DefaultsValidate) {
  EXPECT_TRUE(Good().Validate().ok()) << Good().Validate().ToString();
}

TEST(RingConfig, RejectsNonsense) {
  struct Case {
    const char* field;
    void (*mutate)(RingConfig&);
  } cases[] = {
      {"node_id", [](RingConfig& c) { c.node_id = 0; }},
      {"not in members", [](RingConfig& c) { c.node_id = 9; }},
      {"duplicate",
       [](RingConfig& c) {
         c.members = {1, 2, 2};
       }},
      {"window_size", [](RingConfig& c) { c.window_size = 0; }},
      {"max_messages_per_visit",
       [](RingConfig& c) { c.max_messages_per_visit = c.window_size + 1; }},
      {"max_frame_bytes", [](RingConfig& c) { c.max_frame_bytes = 64; }},
      {"max_frame_bytes", [](RingConfig& c) { c.max_frame_bytes = 70000; }},
      {"receive_buffer_frames", [](RingConfig& c) { c.receive_buffer_frames = 1000; }},
      {"receive_buffer_frames", [](RingConfig& c) { c.receive_buffer_frames = 512; }},
      {"max_pending_bytes", [](RingConfig& c) { c.max_pending_bytes = 10; }},
      {"token_retransmit_us", [](RingConfig& c) { c.token_retransmit_us = 1; }},
      {"token_hold_us", [](RingConfig& c) { c.token_hold_us = c.token_retransmit_us; }},
      {"idle_rotations_before_hold", [](RingConfig& c) { c.idle_rotations_before_hold = 1; }},
      {"max_rtr_entries", [](RingConfig& c) { c.max_rtr_entries = 1000; }},
  };
  for (const Case& k : cases) {
    RingConfig c = Good();
    k.mutate(c);
    Status st = c.Validate();
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << k.field;
    EXPECT_NE(st.message().find(k.field), std::string::npos) << st.message();
  }
}

}  // namespace
}  // namespace totem

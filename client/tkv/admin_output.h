// tkv's printers for totemkvd's Admin service (proto/admin/admin.proto):
// `tkv ring`, `tkv configurations`, `tkv counters`. Simple form: one
// "name: value" line per field (ring, counters; counters sorted by name and
// prefixed "totem." or "store.") or one line per configuration event:
//   TIME KIND RING_ID members=1,2,3 joined=... left=...
// with TIME in UTC (RFC 3339, µs) and RING_ID as representative:seq.
// JSON form (one object, stable):
//   ring:  {"node_id","ring_id":{"representative","seq"},"members":[..],
//           "state":"operational"|"gather"|"commit"|"recovery"|"unspecified",
//           "representative","in_transition","primary","token_rotation_us"}
//   configurations: {"events":[{"kind":"regular"|"transitional",
//           "ring_id":{..},"members","joined","left","time_unix_us"}],"dropped"}
//   counters: {"node_id","uptime_ms","totem":{NAME:N,..},"store":{NAME:N,..}}
#ifndef TOTEMKV_CLIENT_TKV_ADMIN_OUTPUT_H_
#define TOTEMKV_CLIENT_TKV_ADMIN_OUTPUT_H_

#include <string>

#include "admin/admin.pb.h"

namespace totemkv::tkv {

// "operational", "gather", ... ("unspecified" for anything else).
std::string RingStateName(totemkv::admin::v1::RingState state);

std::string JsonRing(const totemkv::admin::v1::GetRingResponse& r);
std::string SimpleRing(const totemkv::admin::v1::GetRingResponse& r);
std::string JsonConfigurations(const totemkv::admin::v1::ListConfigurationsResponse& r);
std::string SimpleConfigurations(const totemkv::admin::v1::ListConfigurationsResponse& r);
std::string JsonCounters(const totemkv::admin::v1::GetCountersResponse& r);
std::string SimpleCounters(const totemkv::admin::v1::GetCountersResponse& r);

}  // namespace totemkv::tkv

#endif  // TOTEMKV_CLIENT_TKV_ADMIN_OUTPUT_H_

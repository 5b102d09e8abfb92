// Plain C++ request, response and op types of the MVCC store. They mirror
// etcd's v3 API messages (etcdserverpb / mvccpb) field for field where etcd
// has one, so the server converts to and from the wire protos mechanically;
// ops the etcd API has no word for (LeaseExpire, the op id, the applied
// position) are our own. No protobuf dependency on purpose: the store is a
// pure library that also runs in the simulator.
#ifndef KVSTORE_TYPES_H_
#define KVSTORE_TYPES_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "totem/status.h"

namespace kvstore {

using totem::Status;
using totem::StatusCode;
using totem::StatusOr;

// Error messages the server may match to pick the gRPC code (etcd's exact
// texts where etcd has one).
inline constexpr char kErrCompacted[] = "mvcc: required revision has been compacted";
inline constexpr char kErrFutureRev[] = "mvcc: required revision is a future revision";
inline constexpr char kErrLeaseNotFound[] = "etcdserver: requested lease not found";
inline constexpr char kErrLeaseExists[] = "etcdserver: lease already exists";
inline constexpr char kErrKeyNotFound[] = "etcdserver: key not found";
inline constexpr char kErrTooManyOps[] = "etcdserver: too many operations in txn request";
inline constexpr char kErrRequestTooLarge[] = "etcdserver: request is too large";
inline constexpr char kErrEmptyKey[] = "etcdserver: key is not provided";
inline constexpr char kErrValueProvided[] = "etcdserver: value is provided";
inline constexpr char kErrLeaseProvided[] = "etcdserver: lease is provided";
inline constexpr char kErrDuplicateKey[] = "etcdserver: duplicate key given in txn request";

// mvccpb.KeyValue.
struct KeyValue {
  std::string key;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  std::string value;
  int64_t lease = 0;
  bool operator==(const KeyValue&) const = default;
};

// mvccpb.Event.
struct Event {
  enum class Type { kPut = 0, kDelete = 1 };
  Type type = Type::kPut;
  // For a delete: key and mod_revision (the deleting revision) only.
  KeyValue kv;
  // The key's previous live value, if any and not compacted away.
  std::optional<KeyValue> prev_kv;
  bool operator==(const Event&) const = default;
};

// Key ranges follow etcd: empty range_end = the single key `key`;
// range_end "\0" = every key >= key (key "\0" too = the whole keyspace);
// otherwise [key, range_end).
struct RangeRequest {
  enum class SortOrder { kNone = 0, kAscend = 1, kDescend = 2 };
  enum class SortTarget { kKey = 0, kVersion = 1, kCreate = 2, kMod = 3, kValue = 4 };
  std::string key;
  std::string range_end;
  int64_t limit = 0;     // 0 = no limit
  int64_t revision = 0;  // <= 0 = current
  SortOrder sort_order = SortOrder::kNone;
  SortTarget sort_target = SortTarget::kKey;
  bool keys_only = false;
  bool count_only = false;
  int64_t min_mod_revision = 0;  // 0 = no filter
  int64_t max_mod_revision = 0;
  int64_t min_create_revision = 0;
  int64_t max_create_revision = 0;
};

struct RangeResponse {
  std::vector<KeyValue> kvs;
  bool more = false;  // more keys than `limit` matched
  int64_t count = 0;  // keys in the range at the read revision (before filters)
};

struct PutRequest {
  std::string key;
  std::string value;
  int64_t lease = 0;
  bool prev_kv = false;
  bool ignore_value = false;
  bool ignore_lease = false;
};

struct PutResponse {
  std::optional<KeyValue> prev_kv;
};

struct DeleteRangeRequest {
  std::string key;
  std::string range_end;
  bool prev_kv = false;
};

struct DeleteRangeResponse {
  int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;
};

struct Compare {
  enum class Result { kEqual = 0, kGreater = 1, kLess = 2, kNotEqual = 3 };
  enum class Target { kVersion = 0, kCreate = 1, kMod = 2, kValue = 3, kLease = 4 };
  Result result = Result::kEqual;
  Target target = Target::kValue;
  std::string key;
  std::string range_end;  // etcd 3.3+: every key in the range must satisfy
  // The operand for `target` (only the matching field is used).
  int64_t version = 0;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  std::string value;
  int64_t lease = 0;
};

struct RequestOp;
struct TxnRequest {
  std::vector<Compare> compare;
  std::vector<RequestOp> success;
  std::vector<RequestOp> failure;
};
struct RequestOp {
  std::variant<RangeRequest, PutRequest, DeleteRangeRequest, TxnRequest> request;
};

struct ResponseOp;
struct TxnResponse {
  bool succeeded = false;
  std::vector<ResponseOp> responses;
};
struct ResponseOp {
  std::variant<RangeResponse, PutResponse, DeleteRangeResponse, TxnResponse> response;
};

struct CompactionRequest {
  int64_t revision = 0;
};
struct CompactionResponse {};

// Lease ids are chosen by the proposer (etcd's leader picks one at random
// before proposing; our server does the same): id 0 is rejected, so the
// apply path never invents an id.
struct LeaseGrantRequest {
  int64_t id = 0;
  int64_t ttl = 0;  // seconds; clamped to >= 1
};
// `generation` changes at every grant and keep-alive of any lease (a store
// wide counter, so a revoked and re-granted id never reuses one). A
// LeaseExpire carrying an older generation is stale and ignored.
struct LeaseGrantResponse {
  int64_t id = 0;
  int64_t ttl = 0;
  uint64_t generation = 0;
};
struct LeaseRevokeRequest {
  int64_t id = 0;
};
struct LeaseRevokeResponse {};
struct LeaseKeepAliveRequest {
  int64_t id = 0;
};
struct LeaseKeepAliveResponse {
  int64_t id = 0;
  int64_t ttl = 0;
  uint64_t generation = 0;
};
// Proposed by a node whose clock says the lease ran out. Revokes the lease
// only if it still exists with exactly this generation.
struct LeaseExpireRequest {
  int64_t id = 0;
  uint64_t generation = 0;
};
struct LeaseExpireResponse {
  bool expired = false;  // false: stale or unknown lease, nothing changed
};

// What TimeToLive / Leases report. Remaining time is the server's business
// (its clock); the store knows the granted TTL and the generation.
struct LeaseInfo {
  int64_t id = 0;
  int64_t granted_ttl = 0;
  uint64_t generation = 0;
  std::vector<std::string> keys;  // filled only when asked for
};

// A client-chosen or generated op id; all zero = no duplicate detection.
using OpId = std::array<uint8_t, 16>;

struct Op {
  OpId op_id{};
  std::variant<RangeRequest, PutRequest, DeleteRangeRequest, TxnRequest, CompactionRequest,
               LeaseGrantRequest, LeaseRevokeRequest, LeaseKeepAliveRequest, LeaseExpireRequest>
      request;
};

struct OpResult {
  // Ok, or why the op changed nothing (INVALID_ARGUMENT for limits and
  // malformed ops, FAILED_PRECONDITION for compacted/future revisions,
  // unknown or existing leases, ignore_value on a missing key).
  Status status;
  // The op id was applied before (possibly in an earlier batch or before a
  // restart): nothing was applied now; `status` and `revision` are the
  // original outcome's, `response` is empty.
  bool duplicate = false;
  // The store revision right after this op (etcd's response header).
  int64_t revision = 0;
  std::variant<std::monostate, RangeResponse, PutResponse, DeleteRangeResponse, TxnResponse,
               CompactionResponse, LeaseGrantResponse, LeaseRevokeResponse,
               LeaseKeepAliveResponse, LeaseExpireResponse>
      response;
};

// Where the caller is in its ordered stream: written atomically with the
// data of each batch. The store never interprets it.
struct AppliedPosition {
  std::string config_id;  // opaque (e.g. the encoded ring id)
  uint64_t seq = 0;
  bool operator==(const AppliedPosition&) const = default;
};

// Reading the event history for watches.
struct HistoryRequest {
  std::string key;
  std::string range_end;     // etcd conventions as in RangeRequest
  int64_t start_revision = 0;  // <= 0 = current + 1 (nothing yet)
  bool prev_kv = false;
  size_t max_events = 0;  // 0 = no limit; a revision is never split
};

}  // namespace kvstore

#endif  // KVSTORE_TYPES_H_

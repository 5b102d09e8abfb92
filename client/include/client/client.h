// totemkv_client: a C++ client for the etcd v3 gRPC API, which totemkvd
// serves and etcd itself serves too. One Client holds a channel per
// endpoint and talks to one at a time; when an endpoint cannot be reached
// (or answers UNAVAILABLE) it moves to the next. Requests are built from
// small option structs; responses are the etcd v3 protobuf messages
// themselves (etcdserverpb::RangeResponse, ...), so nothing is lost.
//
// Retry and failover rules (the same caution etcd's clientv3 takes):
//  - Every call has one deadline, ClientOptions::command_timeout, covering
//    all attempts. Connecting to an endpoint is bounded by dial_timeout.
//  - An endpoint that cannot be connected to is skipped for any call: the
//    request was never sent, so retrying elsewhere is safe.
//  - Every write (Put, Delete, Txn, Compact, lease grant/revoke/keep-alive)
//    carries a random 16-byte op id, chosen once per call and sent as the
//    gRPC metadata kOpIdMetadataKey on every attempt. totemkvd applies an
//    op id at most once: a retry of a write that was already applied gets
//    the original outcome (status and header revision; the rest of the
//    response body is empty, since it is not kept). etcd ignores the
//    metadata.
//  - When a call that was sent fails with UNAVAILABLE, or gets no answer
//    within its attempt timeout (DEADLINE_EXCEEDED while the call's
//    deadline has not passed), it is retried on the next endpoint: reads
//    always; writes too (with the same op id) unless retry_writes is off.
//    Against etcd, which does not deduplicate, a retried write may be
//    applied twice: turn retry_writes off there for at-most-once writes.
//  - Up to `max_rounds` passes over the endpoint list, with a short backoff
//    between passes, while the deadline allows.
//
// Thread-safety: a Client may be used from several threads at once. A
// Watcher belongs to one reader thread, except Cancel(), which any thread
// may call.
#ifndef TOTEMKV_CLIENT_CLIENT_H_
#define TOTEMKV_CLIENT_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client/status.h"
#include "etcd/kv.pb.h"
#include "admin/admin.grpc.pb.h"
#include "etcd/rpc.grpc.pb.h"

namespace totemkv::client {

struct ClientOptions {
  // "host:port" (an "http://" prefix is accepted and dropped). Tried in
  // order; must not be empty.
  std::vector<std::string> endpoints = {"127.0.0.1:2379"};
  // Bound on establishing a connection to one endpoint.
  std::chrono::milliseconds dial_timeout{2000};
  // Bound on a whole call, all attempts and failovers included.
  std::chrono::milliseconds command_timeout{5000};
  // Passes over the endpoint list before giving up (>= 1).
  int max_rounds = 2;
  // Bound on one attempt at one endpoint, after which the call moves on to
  // the next endpoint. 0: command_timeout / 2 with several endpoints (a
  // member that hangs, e.g. cut off from its ring, leaves time for a retry
  // elsewhere), the whole command_timeout with one.
  std::chrono::milliseconds attempt_timeout{0};
  // Retry writes on another endpoint after UNAVAILABLE or an attempt
  // timeout, with the same op id (see above). Safe against totemkvd.
  bool retry_writes = true;
  // TLS (etcdctl's --cacert/--cert/--key), as PEM text, not paths. With
  // `tls` every endpoint is dialled with TLS: the server certificate must
  // be signed by `tls_ca_pem` (empty: the system's roots) and name the
  // endpoint's host; `tls_cert_pem` + `tls_key_pem` (both or neither) are
  // presented for client-certificate authentication.
  bool tls = false;
  std::string tls_ca_pem{};
  std::string tls_cert_pem{};
  std::string tls_key_pem{};
};

// The gRPC metadata key that carries a write's op id: 32 hex digits (16
// bytes, not all zero). totemkvd answers INVALID_ARGUMENT to a malformed one.
inline constexpr char kOpIdMetadataKey[] = "totemkv-op-id";

// A fresh random op id as 32 lowercase hex digits (never all zero).
std::string NewOpId();

// Splits "a,b,c" into endpoints, trimming blanks and "http://" or
// "https://" prefixes (whether to use TLS is ClientOptions::tls).
std::vector<std::string> ParseEndpoints(const std::string& comma_separated);

// The smallest key greater than every key that starts with `prefix`, as
// etcd's range_end for a prefix ("\0" for an empty prefix: every key).
std::string PrefixRangeEnd(const std::string& prefix);

struct GetOptions {
  bool prefix = false;      // every key starting with the key
  bool from_key = false;    // every key >= the key
  std::string range_end{};  // explicit [key, range_end); overrides the two above
  int64_t revision = 0;     // <= 0: latest
  int64_t limit = 0;        // 0: no limit
  bool keys_only = false;
  bool count_only = false;
  bool serializable = false;  // answer from the member's local state
  etcdserverpb::RangeRequest::SortOrder sort_order = etcdserverpb::RangeRequest::NONE;
  etcdserverpb::RangeRequest::SortTarget sort_target = etcdserverpb::RangeRequest::KEY;
};

struct PutOptions {
  int64_t lease = 0;  // attach to this lease (0: none)
  bool prev_kv = false;
  bool ignore_value = false;
  bool ignore_lease = false;
};

struct DeleteOptions {
  bool prefix = false;
  bool from_key = false;
  std::string range_end{};
  bool prev_kv = false;
};

struct WatchOptions {
  bool prefix = false;
  std::string range_end{};
  int64_t start_revision = 0;  // 0: from now on
  bool prev_kv = false;
  bool progress_notify = false;
};

// Building blocks for Txn. Compare helpers take the etcd operators.
namespace txn {
etcdserverpb::Compare Value(const std::string& key, etcdserverpb::Compare::CompareResult r,
                            const std::string& value);
etcdserverpb::Compare Version(const std::string& key, etcdserverpb::Compare::CompareResult r,
                              int64_t version);
etcdserverpb::Compare CreateRevision(const std::string& key,
                                     etcdserverpb::Compare::CompareResult r, int64_t revision);
etcdserverpb::Compare ModRevision(const std::string& key, etcdserverpb::Compare::CompareResult r,
                                  int64_t revision);
etcdserverpb::Compare Lease(const std::string& key, etcdserverpb::Compare::CompareResult r,
                            int64_t lease);
etcdserverpb::RequestOp Put(const std::string& key, const std::string& value,
                            const PutOptions& options = {});
etcdserverpb::RequestOp Get(const std::string& key, const GetOptions& options = {});
etcdserverpb::RequestOp Delete(const std::string& key, const DeleteOptions& options = {});
}  // namespace txn

// Request builders shared by Client and txn:: (exposed for tests and the CLI).
etcdserverpb::RangeRequest MakeRangeRequest(const std::string& key, const GetOptions& options);
etcdserverpb::PutRequest MakePutRequest(const std::string& key, const std::string& value,
                                        const PutOptions& options);
etcdserverpb::DeleteRangeRequest MakeDeleteRequest(const std::string& key,
                                                   const DeleteOptions& options);

class Client;

// One watch stream. Read with Next() until it returns an error; the first
// message of the stream (the "created" response) is consumed by
// Client::Watch, so Next() only yields responses that carry events (or
// progress notifications, with no events).
class Watcher {
 public:
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Blocks for the next response. Errors: CANCELLED after Cancel();
  // OUT_OF_RANGE when the start revision was compacted (message names the
  // compact revision); ABORTED when the server cancels the watch; any gRPC
  // error of the stream (UNAVAILABLE when the server goes away).
  StatusOr<etcdserverpb::WatchResponse> Next();

  // Ends the stream; a blocked Next() returns CANCELLED. Any thread.
  void Cancel();

  int64_t watch_id() const { return watch_id_; }
  // The endpoint serving this watch.
  const std::string& endpoint() const { return endpoint_; }

 private:
  friend class Client;
  Watcher() = default;

  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<etcdserverpb::Watch::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::WatchRequest,
                                           etcdserverpb::WatchResponse>>
      stream_;
  std::string endpoint_;
  int64_t watch_id_ = 0;
  bool cancelled_ = false;  // guarded by mu_
  std::mutex mu_;
};

class Client {
 public:
  // Never fails: channels connect lazily. INVALID_ARGUMENT-free: an empty
  // endpoint list behaves as a list of one unreachable endpoint.
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const { return options_; }
  // The endpoint the next call tries first (the last one that answered).
  std::string current_endpoint() const;

  // KV. Errors: the server's gRPC status (INVALID_ARGUMENT for bad keys or
  // too-large requests, OUT_OF_RANGE for a compacted revision, ...),
  // DEADLINE_EXCEEDED, or UNAVAILABLE when no endpoint answered.
  StatusOr<etcdserverpb::PutResponse> Put(const std::string& key, const std::string& value,
                                          const PutOptions& options = {});
  StatusOr<etcdserverpb::RangeResponse> Get(const std::string& key,
                                            const GetOptions& options = {});
  StatusOr<etcdserverpb::DeleteRangeResponse> Delete(const std::string& key,
                                                     const DeleteOptions& options = {});
  StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& request);
  StatusOr<etcdserverpb::CompactionResponse> Compact(int64_t revision, bool physical = false);

  // Opens a watch on `key` and waits (up to command_timeout) until the
  // server confirms it. Errors as Watcher::Next, plus UNAVAILABLE.
  StatusOr<std::unique_ptr<Watcher>> Watch(const std::string& key,
                                           const WatchOptions& options = {});
  // Callback form: calls `on_response` for every response until it returns
  // false (then returns OK) or the stream fails (returns that error).
  Status Watch(const std::string& key, const WatchOptions& options,
               const std::function<bool(const etcdserverpb::WatchResponse&)>& on_response);

  // Leases. KeepAliveOnce answers TTL <= 0 when the lease no longer exists.
  StatusOr<etcdserverpb::LeaseGrantResponse> LeaseGrant(int64_t ttl_seconds, int64_t id = 0);
  StatusOr<etcdserverpb::LeaseRevokeResponse> LeaseRevoke(int64_t id);
  StatusOr<etcdserverpb::LeaseKeepAliveResponse> LeaseKeepAliveOnce(int64_t id);
  StatusOr<etcdserverpb::LeaseTimeToLiveResponse> LeaseTimeToLive(int64_t id, bool keys = false);

  // Cluster and maintenance.
  StatusOr<etcdserverpb::MemberListResponse> MemberList();
  // Maintenance.Status of whichever endpoint answers (with failover).
  StatusOr<etcdserverpb::StatusResponse> ServerStatus();
  // Maintenance.Status of exactly `endpoint` (no failover), for
  // per-endpoint tables.
  StatusOr<etcdserverpb::StatusResponse> ServerStatus(const std::string& endpoint);
  // Maintenance.Snapshot: hands every response (blob pieces in order) to
  // `on_response` until the stream ends (OK) or it returns false
  // (CANCELLED). Failover applies only until the first response arrived;
  // a stream broken after that fails with ABORTED (the caller's partial
  // output is incomplete). The stream itself has no deadline (a large
  // store takes long); connecting is bounded by the usual timeouts.
  Status Snapshot(const std::function<bool(const etcdserverpb::SnapshotResponse&)>& on_response);

  // totemkvd's own Admin service (proto/admin/admin.proto; etcd answers
  // UNIMPLEMENTED). Reads with failover, like Get: each response names the
  // node that answered (node_id). `limit` 0: every event the node keeps.
  StatusOr<totemkv::admin::v1::GetRingResponse> AdminGetRing();
  // GetRing of exactly `endpoint` (no failover), for `tkv status`.
  StatusOr<totemkv::admin::v1::GetRingResponse> AdminGetRing(const std::string& endpoint);
  StatusOr<totemkv::admin::v1::ListConfigurationsResponse> AdminListConfigurations(
      uint32_t limit = 0);
  StatusOr<totemkv::admin::v1::GetCountersResponse> AdminGetCounters();

 private:
  struct Endpoint;
  enum class Kind { kRead, kWrite };
  using Attempt = std::function<grpc::Status(const std::shared_ptr<grpc::Channel>&,
                                             grpc::ClientContext*)>;

  // Runs `attempt` against endpoints per the failover rules above; a kWrite
  // call sends one op id (NewOpId) with every attempt.
  Status Call(Kind kind, const Attempt& attempt);
  // Connects `endpoint` before `deadline` (and within dial_timeout); false
  // when it cannot.
  bool Connect(Endpoint& endpoint, std::chrono::system_clock::time_point deadline,
               bool first_round);
  Endpoint& EndpointAt(size_t index);

  ClientOptions options_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  mutable std::mutex mu_;
  size_t current_ = 0;  // guarded by mu_
};

}  // namespace totemkv::client

#endif  // TOTEMKV_CLIENT_CLIENT_H_

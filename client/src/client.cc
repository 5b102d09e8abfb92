// Client implementation: one lazily connecting gRPC channel per endpoint,
// and Call(), which applies the deadline, dial timeout and failover rules
// documented in client.h to a single RPC attempt function.
#include "client/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <condition_variable>
#include <random>
#include <thread>
#include <utility>

namespace totemkv::client {
namespace {

using Clock = std::chrono::system_clock;

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Fills key/range_end for the prefix/from_key/range_end trio.
void SetRange(const std::string& key, bool prefix, bool from_key, const std::string& range_end,
              std::string* out_key, std::string* out_range_end) {
  *out_key = key;
  if (!range_end.empty()) {
    *out_range_end = range_end;
  } else if (prefix) {
    *out_range_end = PrefixRangeEnd(key);
  } else if (from_key) {
    if (key.empty()) *out_key = std::string(1, '\0');
    *out_range_end = std::string(1, '\0');
  }
}

etcdserverpb::Compare MakeCompare(const std::string& key, etcdserverpb::Compare::CompareResult r,
                                  etcdserverpb::Compare::CompareTarget t) {
  etcdserverpb::Compare c;
  c.set_key(key);
  c.set_result(r);
  c.set_target(t);
  return c;
}

}  // namespace

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = StatusCodeName(code_);
  if (!message_.empty()) s += ": " + message_;
  return s;
}

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::OK: return "OK";
    case StatusCode::CANCELLED: return "CANCELLED";
    case StatusCode::UNKNOWN: return "UNKNOWN";
    case StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case StatusCode::NOT_FOUND: return "NOT_FOUND";
    case StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    case StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case StatusCode::ABORTED: return "ABORTED";
    case StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case StatusCode::INTERNAL: return "INTERNAL";
    case StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case StatusCode::DATA_LOSS: return "DATA_LOSS";
    default: return "UNKNOWN_CODE";
  }
}

std::string NewOpId() {
  // One generator per thread, seeded from the OS: ids must differ across
  // threads, processes and restarts, not be secret.
  thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  do {
    id.clear();
    for (int word = 0; word < 2; ++word) {
      uint64_t bits = rng();
      for (int i = 0; i < 16; ++i, bits >>= 4) id.push_back(kHex[bits & 0xf]);
    }
  } while (id.find_first_not_of('0') == std::string::npos);
  return id;
}

std::vector<std::string> ParseEndpoints(const std::string& comma_separated) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= comma_separated.size()) {
    size_t end = comma_separated.find(',', start);
    if (end == std::string::npos) end = comma_separated.size();
    std::string e = Trim(comma_separated.substr(start, end - start));
    for (const char* scheme : {"http://", "https://", "grpc://"}) {
      const std::string sc = scheme;
      if (e.rfind(sc, 0) == 0) e = e.substr(sc.size());
    }
    while (!e.empty() && e.back() == '/') e.pop_back();
    if (!e.empty()) out.push_back(e);
    start = end + 1;
  }
  return out;
}

std::string PrefixRangeEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

etcdserverpb::RangeRequest MakeRangeRequest(const std::string& key, const GetOptions& o) {
  etcdserverpb::RangeRequest r;
  SetRange(key, o.prefix, o.from_key, o.range_end, r.mutable_key(), r.mutable_range_end());
  r.set_revision(o.revision);
  r.set_limit(o.limit);
  r.set_keys_only(o.keys_only);
  r.set_count_only(o.count_only);
  r.set_serializable(o.serializable);
  r.set_sort_order(o.sort_order);
  r.set_sort_target(o.sort_target);
  return r;
}

etcdserverpb::PutRequest MakePutRequest(const std::string& key, const std::string& value,
                                        const PutOptions& o) {
  etcdserverpb::PutRequest r;
  r.set_key(key);
  r.set_value(value);
  r.set_lease(o.lease);
  r.set_prev_kv(o.prev_kv);
  r.set_ignore_value(o.ignore_value);
  r.set_ignore_lease(o.ignore_lease);
  return r;
}

etcdserverpb::DeleteRangeRequest MakeDeleteRequest(const std::string& key,
                                                   const DeleteOptions& o) {
  etcdserverpb::DeleteRangeRequest r;
  SetRange(key, o.prefix, o.from_key, o.range_end, r.mutable_key(), r.mutable_range_end());
  r.set_prev_kv(o.prev_kv);
  return r;
}

namespace txn {
etcdserverpb::Compare Value(const std::string& key, etcdserverpb::Compare::CompareResult r,
                            const std::string& value) {
  auto c = MakeCompare(key, r, etcdserverpb::Compare::VALUE);
  c.set_value(value);
  return c;
}
etcdserverpb::Compare Version(const std::string& key, etcdserverpb::Compare::CompareResult r,
                              int64_t version) {
  auto c = MakeCompare(key, r, etcdserverpb::Compare::VERSION);
  c.set_version(version);
  return c;
}
etcdserverpb::Compare CreateRevision(const std::string& key,
                                     etcdserverpb::Compare::CompareResult r, int64_t revision) {
  auto c = MakeCompare(key, r, etcdserverpb::Compare::CREATE);
  c.set_create_revision(revision);
  return c;
}
etcdserverpb::Compare ModRevision(const std::string& key, etcdserverpb::Compare::CompareResult r,
                                  int64_t revision) {
  auto c = MakeCompare(key, r, etcdserverpb::Compare::MOD);
  c.set_mod_revision(revision);
  return c;
}
etcdserverpb::Compare Lease(const std::string& key, etcdserverpb::Compare::CompareResult r,
                            int64_t lease) {
  auto c = MakeCompare(key, r, etcdserverpb::Compare::LEASE);
  c.set_lease(lease);
  return c;
}
etcdserverpb::RequestOp Put(const std::string& key, const std::string& value,
                            const PutOptions& options) {
  etcdserverpb::RequestOp op;
  *op.mutable_request_put() = MakePutRequest(key, value, options);
  return op;
}
etcdserverpb::RequestOp Get(const std::string& key, const GetOptions& options) {
  etcdserverpb::RequestOp op;
  *op.mutable_request_range() = MakeRangeRequest(key, options);
  return op;
}
etcdserverpb::RequestOp Delete(const std::string& key, const DeleteOptions& options) {
  etcdserverpb::RequestOp op;
  *op.mutable_request_delete_range() = MakeDeleteRequest(key, options);
  return op;
}
}  // namespace txn

// ---------------------------------------------------------------- Watcher

Watcher::~Watcher() {
  Cancel();
  if (stream_) {
    etcdserverpb::WatchResponse ignored;
    while (stream_->Read(&ignored)) {
    }
    stream_->Finish().ok();
  }
}

void Watcher::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_) return;
  cancelled_ = true;
  if (context_) context_->TryCancel();
}

StatusOr<etcdserverpb::WatchResponse> Watcher::Next() {
  etcdserverpb::WatchResponse resp;
  for (;;) {
    if (!stream_->Read(&resp)) {
      const grpc::Status s = stream_->Finish();
      stream_.reset();
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (cancelled_) return Status(StatusCode::CANCELLED, "watch cancelled");
      }
      if (s.ok()) return Status(StatusCode::UNAVAILABLE, "watch stream closed by server");
      return Status::FromGrpc(s);
    }
    if (resp.compact_revision() > 0) {
      return Status(StatusCode::OUT_OF_RANGE,
                    "required revision has been compacted; compact revision " +
                        std::to_string(resp.compact_revision()));
    }
    if (resp.canceled()) {
      return Status(StatusCode::ABORTED,
                    "watch canceled by server" +
                        (resp.cancel_reason().empty() ? "" : ": " + resp.cancel_reason()));
    }
    if (resp.created()) continue;  // a duplicate "created" carries nothing
    return resp;
  }
}

// ----------------------------------------------------------------- Client

struct Client::Endpoint {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
};

Client::Client(ClientOptions options) : options_(std::move(options)) {
  if (options_.max_rounds < 1) options_.max_rounds = 1;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  // A dead endpoint that comes back is noticed within a second.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (options_.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options_.tls_ca_pem;
    ssl.pem_private_key = options_.tls_key_pem;
    ssl.pem_cert_chain = options_.tls_cert_pem;
    credentials = grpc::SslCredentials(ssl);
  }
  for (const std::string& address : options_.endpoints) {
    auto ep = std::make_unique<Endpoint>();
    ep->address = address;
    ep->channel = grpc::CreateCustomChannel(address, credentials, args);
    endpoints_.push_back(std::move(ep));
  }
}

Client::~Client() = default;

std::string Client::current_endpoint() const {
  std::lock_guard<std::mutex> lock(mu_);
  return endpoints_.empty() ? "" : endpoints_[current_]->address;
}

bool Client::Connect(Endpoint& ep, Clock::time_point deadline, bool first_round) {
  const Clock::time_point dial_deadline = std::min(deadline, Clock::now() + options_.dial_timeout);
  grpc_connectivity_state state = ep.channel->GetState(/*try_to_connect=*/true);
  // In the first pass a failed connection attempt is final: the caller
  // moves on to the next endpoint at once rather than burn the dial
  // timeout. Later passes wait through one reconnection attempt (gRPC
  // keeps reporting TRANSIENT_FAILURE until a reconnect succeeds).
  bool waited_through_failure = first_round;
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_SHUTDOWN) return false;
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE && waited_through_failure) return false;
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE) waited_through_failure = true;
    if (!ep.channel->WaitForStateChange(state, dial_deadline)) return false;
    state = ep.channel->GetState(true);
  }
  return true;
}

Status Client::Call(Kind kind, const Attempt& attempt) {
  const Clock::time_point deadline = Clock::now() + options_.command_timeout;
  if (endpoints_.empty()) return Status(StatusCode::INVALID_ARGUMENT, "no endpoints given");
  size_t start;
  {
    std::lock_guard<std::mutex> lock(mu_);
    start = current_;
  }
  const size_t n = endpoints_.size();
  std::chrono::milliseconds attempt_timeout = options_.attempt_timeout;
  if (attempt_timeout.count() <= 0) {
    attempt_timeout = n > 1 ? options_.command_timeout / 2 : options_.command_timeout;
  }
  // One id for every attempt of this call: a write that reached a server
  // before its answer was lost is not applied again by the retry.
  const std::string op_id = kind == Kind::kWrite ? NewOpId() : std::string();
  const bool retry = kind == Kind::kRead || options_.retry_writes;
  std::vector<std::string> unreachable;
  Status last(StatusCode::UNAVAILABLE, "no endpoint answered");
  for (int round = 0; round < options_.max_rounds; ++round) {
    if (round > 0) {
      const auto backoff = std::chrono::milliseconds(100 * round);
      if (Clock::now() + backoff >= deadline) break;
      std::this_thread::sleep_for(backoff);
    }
    unreachable.clear();
    for (size_t i = 0; i < n; ++i) {
      if (Clock::now() >= deadline) {
        return Status(StatusCode::DEADLINE_EXCEEDED,
                      "no answer within command timeout " +
                          std::to_string(options_.command_timeout.count()) + " ms");
      }
      const size_t idx = (start + i) % n;
      Endpoint& ep = *endpoints_[idx];
      if (!Connect(ep, deadline, round == 0)) {
        unreachable.push_back(ep.address);
        continue;
      }
      grpc::ClientContext context;
      const Clock::time_point attempt_deadline = std::min(deadline, Clock::now() + attempt_timeout);
      context.set_deadline(attempt_deadline);
      if (!op_id.empty()) context.AddMetadata(kOpIdMetadataKey, op_id);
      const grpc::Status s = attempt(ep.channel, &context);
      const bool unavailable = s.error_code() == grpc::StatusCode::UNAVAILABLE;
      // Only an attempt cut short by its own bound is worth another
      // endpoint; a call out of time is out of time everywhere.
      const bool attempt_timed_out =
          s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && Clock::now() < deadline;
      if (!unavailable && !attempt_timed_out) {
        if (s.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          current_ = idx;
        }
        return Status::FromGrpc(s);
      }
      last = Status(unavailable ? StatusCode::UNAVAILABLE : StatusCode::DEADLINE_EXCEEDED,
                    ep.address + ": " + s.error_message());
      if (!retry) return last;  // may have been applied
    }
  }
  if (unreachable.size() == n) {
    std::string list;
    for (const std::string& a : unreachable) list += (list.empty() ? "" : ", ") + a;
    return Status(StatusCode::UNAVAILABLE, "cannot connect to any endpoint (" + list + ")");
  }
  return last;
}

StatusOr<etcdserverpb::PutResponse> Client::Put(const std::string& key, const std::string& value,
                                                const PutOptions& options) {
  const auto req = MakePutRequest(key, value, options);
  etcdserverpb::PutResponse resp;
  Status s = Call(Kind::kWrite, [&](const auto& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::KV::NewStub(ch)->Put(ctx, req, &resp);
  });
  if (!s.ok()) return s;
  return resp;
}

StatusOr<etcdserverpb::RangeResponse> Client::Get(const std::string& key,
                                                  const GetOptions& options) {
  const auto req = MakeRangeRequest(key, options);
  etcdserverpb::RangeResponse resp;
  Status s = Call(Kind::kRead, [&](const auto& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::KV::NewStub(ch)->Range(ctx, req, &resp);
  });
  if (!s.ok()) return s;
  return resp;
}

StatusOr<etcdserverpb::DeleteRangeResponse> Client::Delete(const std::string& key,
                                                           const DeleteOptions& options) {
  const auto req = MakeDeleteRequest(key, options);
  etcdserverpb::DeleteRangeResponse resp;
  Status s = Call(Kind::kWrite, [&](const auto& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::KV::NewStub(ch)->DeleteRange(ctx, req, &resp);
  });
  if (!s.ok()) return s;
  return resp;
}

StatusOr<etcdserverpb::TxnResponse> Client::Txn(const etcdserverpb::TxnRequest& request) {
  etcdserverpb::TxnResponse resp;
  Status s = Call(Kind::kWrite, [&](const auto& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::KV::NewStub(ch)->Txn(ctx, request, &resp);
  });
  if (!s.ok()) return s;
  return resp;
}

StatusOr<etcdserverpb::CompactionResponse> Client::Compact(int64_t revision, bool physical) {
  etcdserverpb::CompactionRequest req;
  req.set_revision(revision);
  req.set_physical(physical);
  etcdserverpb::CompactionResponse resp;
  Status s = Call(Kind::kWrite, [&](const auto& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::KV::NewStub(ch)->Compact(ctx, req, &resp);
  });
  if (!s.ok()) return s;
  return resp;
}

StatusOr<std::unique_ptr<Watcher>> Client::Watch(const std::string& key,
                                                 const WatchOptions& options) {
  etcdserverpb::WatchRequest req;
  auto* create = req.mutable_create_request();
  SetRange(key, options.prefix, false, options.range_end, create->mutable_key(),
           create->mutable_range_end());
  create->set_start_revision(options.start_revision);
  create->set_prev_kv(options.prev_kv);
  create->set_progress_notify(options.progress_notify);

  std::unique_ptr<Watcher> watcher;
  Status result = Call(Kind::kRead, [&](const std::shared_ptr<grpc::Channel>& ch,
                                        grpc::ClientContext* call_ctx) {
    // The stream outlives this attempt, so it gets its own context with no
    // deadline; the creation handshake is bounded by cancelling it from a
    // timer thread at the call's deadline.
    auto w = std::unique_ptr<Watcher>(new Watcher());
    w->context_ = std::make_unique<grpc::ClientContext>();
    w->stub_ = etcdserverpb::Watch::NewStub(ch);
    w->stream_ = w->stub_->Watch(w->context_.get());
    const auto deadline = call_ctx->deadline();
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    bool timed_out = false;
    std::thread timer([&] {
      std::unique_lock<std::mutex> lock(m);
      if (!cv.wait_until(lock, deadline, [&] { return done; })) {
        timed_out = true;
        w->context_->TryCancel();
      }
    });
    etcdserverpb::WatchResponse first;
    const bool ok = w->stream_->Write(req) && w->stream_->Read(&first);
    {
      std::lock_guard<std::mutex> lock(m);
      done = true;
    }
    cv.notify_all();
    timer.join();
    if (!ok) {
      grpc::Status s = w->stream_->Finish();
      w->stream_.reset();
      if (timed_out) return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "watch not created before deadline");
      return s.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "watch stream closed") : s;
    }
    if (!first.created() || first.canceled()) {
      std::string why = first.cancel_reason().empty() ? "watch not created" : first.cancel_reason();
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, why);
    }
    w->watch_id_ = first.watch_id();
    watcher = std::move(w);
    return grpc::Status::OK;
  });
  if (!result.ok()) return result;
  watcher->endpoint_ = current_endpoint();
  return watcher;
}

Status Client::Watch(const std::string& key, const WatchOptions& options,
                     const std::function<bool(const etcdserverpb::WatchResponse&)>& on_response) {
  auto w = Watch(key, options);
  if (!w.ok()) return w.status();
  for (;;) {
    auto resp = w.value()->Next();
    if (!resp.ok()) return resp.status();
    if (!on_response(*resp)) return Status();
  }
}

StatusOr<etcdserverpb::LeaseGrantResponse> Client::LeaseGrant(int64_t ttl_seconds, int64_t id) {
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(ttl_seconds);
  req.set_id(id);
  etcdserverpb::LeaseGrantResponse resp;
  Status s = Call(Kind::kWrite, [&](const auto& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::Lease::NewStub(ch)->LeaseGrant(ctx, req, &resp);
  });
  if (!s.ok()) return s;
  if (!resp.error().empty()) return Status(StatusCode::UNKNOWN, resp.error());
  return resp;
}

StatusOr<etcdserverpb::LeaseRevokeResponse> Client::LeaseRevoke(int64_t id) {
  etcdserverpb::LeaseRevokeRequest req;
  req.set_id(id);
  etcdserverpb::LeaseRevokeResponse resp;
  Status s = Call(Kind::kWrite, [&](const auto& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::Lease::NewStub(ch)->LeaseRevoke(ctx, req, &resp);
  });
  if (!s.ok()) return s;
  return resp;
}

StatusOr<etcdserverpb::LeaseKeepAliveResponse> Client::LeaseKeepAliveOnce(int64_t id) {
  etcdserverpb::LeaseKeepAliveRequest req;
  req.set_id(id);
  etcdserverpb::LeaseKeepAliveResponse resp;
  Status s = Call(Kind::kWrite, [&](const auto& ch, grpc::ClientContext* ctx) {
    auto stub = etcdserverpb::Lease::NewStub(ch);
    auto stream = stub->LeaseKeepAlive(ctx);
    const bool ok = stream->Write(req) && stream->Read(&resp);
    stream->WritesDone();
    if (!ok) {
      grpc::Status fs = stream->Finish();
      return fs.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "keep-alive stream closed")
                     : fs;
    }
    ctx->TryCancel();  // the answer is in; do not wait for the server to close
    stream->Finish().ok();
    return grpc::Status::OK;
  });
  if (!s.ok()) return s;
  return resp;
}

StatusOr<etcdserverpb::LeaseTimeToLiveResponse> Client::LeaseTimeToLive(int64_t id, bool keys) {
  etcdserverpb::LeaseTimeToLiveRequest req;
  req.set_id(id);
  req.set_keys(keys);
  etcdserverpb::LeaseTimeToLiveResponse resp;
  Status s = Call(Kind::kRead, [&](const auto& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::Lease::NewStub(ch)->LeaseTimeToLive(ctx, req, &resp);
  });
  if (!s.ok()) return s;
  return resp;
}

StatusOr<etcdserverpb::MemberListResponse> Client::MemberList() {
  etcdserverpb::MemberListRequest req;
  etcdserverpb::MemberListResponse resp;
  Status s = Call(Kind::kRead, [&](const auto& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::Cluster::NewStub(ch)->MemberList(ctx, req, &resp);
  });
  if (!s.ok()) return s;
  return resp;
}

StatusOr<etcdserverpb::StatusResponse> Client::ServerStatus() {
  etcdserverpb::StatusRequest req;
  etcdserverpb::StatusResponse resp;
  Status s = Call(Kind::kRead, [&](const auto& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::Maintenance::NewStub(ch)->Status(ctx, req, &resp);
  });
  if (!s.ok()) return s;
  return resp;
}

Status Client::Snapshot(
    const std::function<bool(const etcdserverpb::SnapshotResponse&)>& on_response) {
  etcdserverpb::SnapshotRequest req;
  return Call(Kind::kRead, [&](const auto& ch, grpc::ClientContext*) {
    // The stream may outlast the command timeout: its own context, no deadline.
    grpc::ClientContext ctx;
    auto stub = etcdserverpb::Maintenance::NewStub(ch);
    auto stream = stub->Snapshot(&ctx, req);
    etcdserverpb::SnapshotResponse resp;
    uint64_t received = 0;
    while (stream->Read(&resp)) {
      ++received;
      if (!on_response(resp)) {
        ctx.TryCancel();
        stream->Finish().ok();
        return grpc::Status(grpc::StatusCode::CANCELLED, "snapshot stopped by the caller");
      }
    }
    grpc::Status s = stream->Finish();
    if (!s.ok() && received > 0) {
      return grpc::Status(grpc::StatusCode::ABORTED,
                          "snapshot stream broken after " + std::to_string(received) +
                              " responses: " + s.error_message());
    }
    return s;
  });
}

StatusOr<etcdserverpb::StatusResponse> Client::ServerStatus(const std::string& endpoint) {
  ClientOptions one = options_;
  one.endpoints = {endpoint};
  one.max_rounds = 1;
  Client single(std::move(one));
  auto r = single.ServerStatus();
  if (!r.ok() && r.status().message().find(endpoint) == std::string::npos) {
    return totemkv::client::Status(r.status().code(), endpoint + ": " + r.status().message());
  }
  return r;
}

StatusOr<totemkv::admin::v1::GetRingResponse> Client::AdminGetRing() {
  totemkv::admin::v1::GetRingRequest req;
  totemkv::admin::v1::GetRingResponse resp;
  Status s = Call(Kind::kRead, [&](const auto& ch, grpc::ClientContext* ctx) {
    return totemkv::admin::v1::Admin::NewStub(ch)->GetRing(ctx, req, &resp);
  });
  if (!s.ok()) return s;
  return resp;
}

StatusOr<totemkv::admin::v1::GetRingResponse> Client::AdminGetRing(const std::string& endpoint) {
  ClientOptions one = options_;
  one.endpoints = {endpoint};
  one.max_rounds = 1;
  Client single(std::move(one));
  auto r = single.AdminGetRing();
  if (!r.ok() && r.status().message().find(endpoint) == std::string::npos) {
    return totemkv::client::Status(r.status().code(), endpoint + ": " + r.status().message());
  }
  return r;
}

StatusOr<totemkv::admin::v1::ListConfigurationsResponse> Client::AdminListConfigurations(
    uint32_t limit) {
  totemkv::admin::v1::ListConfigurationsRequest req;
  req.set_limit(limit);
  totemkv::admin::v1::ListConfigurationsResponse resp;
  Status s = Call(Kind::kRead, [&](const auto& ch, grpc::ClientContext* ctx) {
    return totemkv::admin::v1::Admin::NewStub(ch)->ListConfigurations(ctx, req, &resp);
  });
  if (!s.ok()) return s;
  return resp;
}

StatusOr<totemkv::admin::v1::GetCountersResponse> Client::AdminGetCounters() {
  totemkv::admin::v1::GetCountersRequest req;
  totemkv::admin::v1::GetCountersResponse resp;
  Status s = Call(Kind::kRead, [&](const auto& ch, grpc::ClientContext* ctx) {
    return totemkv::admin::v1::Admin::NewStub(ch)->GetCounters(ctx, req, &resp);
  });
  if (!s.ok()) return s;
  return resp;
}

}  // namespace totemkv::client

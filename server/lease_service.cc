// Handlers of the etcd v3 Lease service: validate, propose the ordered
// lease ops through the Replicator, read lease state locally after a read
// barrier, fill the etcd responses. See lease_service.h.
#include "lease_service.h"

#include <algorithm>
#include <string>
#include <variant>

#include "convert.h"

namespace totemkv::server {
namespace {

namespace pb = totemkv::kvstore::v1;

constexpr uint64_t kInt63Mask = (uint64_t{1} << 63) - 1;

bool IsLeaseNotFound(const totem::Status& s) {
  return s.message().rfind(::kvstore::kErrLeaseNotFound, 0) == 0;
}

// A positive int63 id that is a pure function of the client's op id.
int64_t IdFromOpId(const std::string& op_id) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char ch : op_id) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  h &= kInt63Mask;
  return h == 0 ? 1 : static_cast<int64_t>(h);
}

}  // namespace

LeaseService::LeaseService(const ServerContext* ctx, const LeaseManager* leases)
    : ctx_(ctx), leases_(leases), rng_(std::random_device{}()) {}

int64_t LeaseService::RandomUnusedId() {
  for (;;) {
    int64_t id = 0;
    {
      std::lock_guard<std::mutex> l(rng_mu_);
      id = static_cast<int64_t>(rng_() & kInt63Mask);
    }
    if (id == 0) continue;
    totem::StatusOr<::kvstore::LeaseInfo> info = ctx_->replicator().store().TimeToLive(id, false);
    // Not found, or an I/O error: either way the apply decides.
    if (!info.ok()) return id;
  }
}

grpc::Status LeaseService::LeaseGrant(grpc::ServerContext* c,
                                      const etcdserverpb::LeaseGrantRequest* req,
                                      etcdserverpb::LeaseGrantResponse* resp) {
  if (req->ttl() > kMaxLeaseTtlSeconds) {
    return {grpc::StatusCode::OUT_OF_RANGE, "etcdserver: too large lease TTL"};
  }
  std::string op_id;
  if (grpc::Status s = ClientOpId(*c, &op_id); !s.ok()) return s;
  const bool server_chosen = req->id() == 0;
  // A server-chosen id that collides (a grant raced ours) is retried with
  // a fresh one; a client op id fixes the id, so no retry then.
  for (int attempt = 0;; ++attempt) {
    int64_t id = req->id();
    if (server_chosen) id = op_id.empty() ? RandomUnusedId() : IdFromOpId(op_id);
    pb::Op op;
    op.mutable_lease_grant()->set_id(id);
    op.mutable_lease_grant()->set_ttl_seconds(req->ttl());
    totem::StatusOr<::kvstore::OpResult> r =
        ctx_->replicator().Propose(std::move(op), ctx_->Timeout(c), op_id);
    if (!r.ok()) return ToGrpcStatus(r.status());
    if (!r->status.ok()) {
      if (server_chosen && op_id.empty() && attempt < 3 &&
          r->status.message().rfind(::kvstore::kErrLeaseExists, 0) == 0) {
        continue;
      }
      return ToGrpcStatus(r->status);
    }
    resp->set_id(id);
    if (const auto* g = std::get_if<::kvstore::LeaseGrantResponse>(&r->response)) {
      resp->set_ttl(g->ttl);
    } else {
      resp->set_ttl(std::max<int64_t>(req->ttl(), 1));  // a retried op id: no body
    }
    ctx_->FillHeader(resp->mutable_header(), r->revision);
    return grpc::Status::OK;
  }
}

grpc::Status LeaseService::LeaseRevoke(grpc::ServerContext* c,
                                       const etcdserverpb::LeaseRevokeRequest* req,
                                       etcdserverpb::LeaseRevokeResponse* resp) {
  std::string op_id;
  if (grpc::Status s = ClientOpId(*c, &op_id); !s.ok()) return s;
  pb::Op op;
  op.mutable_lease_revoke()->set_id(req->id());
  totem::StatusOr<::kvstore::OpResult> r =
      ctx_->replicator().Propose(std::move(op), ctx_->Timeout(c), op_id);
  if (!r.ok()) return ToGrpcStatus(r.status());
  if (!r->status.ok()) return ToGrpcStatus(r->status);
  ctx_->FillHeader(resp->mutable_header(), r->revision);
  return grpc::Status::OK;
}

grpc::Status LeaseService::LeaseKeepAlive(
    grpc::ServerContext* c, grpc::ServerReaderWriter<etcdserverpb::LeaseKeepAliveResponse,
                                                     etcdserverpb::LeaseKeepAliveRequest>* stream) {
  etcdserverpb::LeaseKeepAliveRequest req;
  while (stream->Read(&req)) {
    etcdserverpb::LeaseKeepAliveResponse resp;
    resp.set_id(req.id());
    // Header before the renewal (etcd: the revision is never one at which
    // the lease might already have been revoked after this renewal).
    ctx_->FillHeader(resp.mutable_header(), ctx_->replicator().store().CurrentRevision());
    pb::Op op;
    op.mutable_lease_keep_alive()->set_id(req.id());
    totem::StatusOr<::kvstore::OpResult> r =
        ctx_->replicator().Propose(std::move(op), ctx_->Timeout(c));
    if (!r.ok()) return ToGrpcStatus(r.status());
    if (!r->status.ok()) {
      if (!IsLeaseNotFound(r->status)) return ToGrpcStatus(r->status);
      resp.set_ttl(0);
    } else if (const auto* k = std::get_if<::kvstore::LeaseKeepAliveResponse>(&r->response)) {
      resp.set_ttl(k->ttl);
    }
    if (!stream->Write(resp)) break;
  }
  return grpc::Status::OK;
}

grpc::Status LeaseService::LeaseTimeToLive(grpc::ServerContext* c,
                                           const etcdserverpb::LeaseTimeToLiveRequest* req,
                                           etcdserverpb::LeaseTimeToLiveResponse* resp) {
  if (totem::Status b = ctx_->replicator().ReadBarrier(ctx_->Timeout(c)); !b.ok()) {
    return ToGrpcStatus(b);
  }
  const ::kvstore::MvccStore& store = ctx_->replicator().store();
  const int64_t revision = store.CurrentRevision();
  totem::StatusOr<::kvstore::LeaseInfo> info = store.TimeToLive(req->id(), req->keys());
  resp->set_id(req->id());
  if (!info.ok()) {
    if (!IsLeaseNotFound(info.status())) return ToGrpcStatus(info.status());
    resp->set_ttl(-1);
  } else {
    resp->set_grantedttl(info->granted_ttl);
    // Not scheduled here yet (applied a moment ago, between the read and
    // the observer): the full TTL is the right answer.
    resp->set_ttl(leases_->RemainingSeconds(req->id()).value_or(info->granted_ttl));
    for (std::string& key : info->keys) resp->add_keys(std::move(key));
  }
  ctx_->FillHeader(resp->mutable_header(), revision);
  return grpc::Status::OK;
}

grpc::Status LeaseService::LeaseLeases(grpc::ServerContext* c,
                                       const etcdserverpb::LeaseLeasesRequest*,
                                       etcdserverpb::LeaseLeasesResponse* resp) {
  if (totem::Status b = ctx_->replicator().ReadBarrier(ctx_->Timeout(c)); !b.ok()) {
    return ToGrpcStatus(b);
  }
  const ::kvstore::MvccStore& store = ctx_->replicator().store();
  const int64_t revision = store.CurrentRevision();
  totem::StatusOr<std::vector<::kvstore::LeaseInfo>> leases = store.Leases();
  if (!leases.ok()) return ToGrpcStatus(leases.status());
  for (const ::kvstore::LeaseInfo& l : *leases) resp->add_leases()->set_id(l.id);
  ctx_->FillHeader(resp->mutable_header(), revision);
  return grpc::Status::OK;
}

}  // namespace totemkv::server

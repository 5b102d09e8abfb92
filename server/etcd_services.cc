// Handlers of the etcd v3 KV, Maintenance and Cluster services: validate,
// propose through the Replicator (or read locally), convert the store's
// answer to the etcd response and fill the header. See etcd_services.h.
#include "etcd_services.h"

#include <filesystem>
#include <variant>

#include "convert.h"

namespace totemkv::server {
namespace {

namespace pb = totemkv::kvstore::v1;

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

int64_t DirectoryBytes(const std::string& path) {
  std::error_code ec;
  int64_t total = 0;
  for (std::filesystem::recursive_directory_iterator it(path, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec)) {
      const auto size = it->file_size(fec);
      if (!fec) total += static_cast<int64_t>(size);
    }
  }
  return total;
}

// Proposes `op` and, on success, hands the typed response to `fill`.
template <typename Resp, typename Proto, typename Fill>
grpc::Status ProposeAndAnswer(const ServerContext& ctx, const grpc::ServerContext* c, pb::Op op,
                              Proto* out, Fill fill) {
  std::string op_id;
  if (grpc::Status s = ClientOpId(*c, &op_id); !s.ok()) return s;
  totem::StatusOr<::kvstore::OpResult> r =
      ctx.replicator().Propose(std::move(op), ctx.Timeout(c), op_id);
  if (!r.ok()) return ToGrpcStatus(r.status());
  if (!r->status.ok()) return ToGrpcStatus(r->status);
  if (const Resp* typed = std::get_if<Resp>(&r->response)) fill(*typed);
  // A duplicate (retried op id) carries no body: the header alone answers.
  ctx.FillHeader(out->mutable_header(), r->revision);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status ClientOpId(const grpc::ServerContext& c, std::string* op_id) {
  op_id->clear();
  const auto& md = c.client_metadata();
  auto it = md.find(kOpIdMetadataKey);
  if (it == md.end()) return grpc::Status::OK;
  const std::string_view hex(it->second.data(), it->second.size());
  auto nibble = [](char ch) -> int {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
  };
  bool ok = hex.size() == 32;
  std::string bytes;
  for (size_t i = 0; ok && i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    ok = hi >= 0 && lo >= 0;
    bytes.push_back(static_cast<char>((hi << 4) | lo));
  }
  if (!ok || bytes == std::string(16, '\0')) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            std::string("totemkv: metadata ") + kOpIdMetadataKey +
                " must be 32 hex digits (16 bytes, not all zero)"};
  }
  *op_id = std::move(bytes);
  return grpc::Status::OK;
}

ServerContext::ServerContext(const ServerConfig& config, Replicator* replicator)
    : config_(config), replicator_(replicator) {
  std::string members;
  for (const ClusterMember& m : config.cluster) {
    members +=
        m.name + "=" + std::to_string(m.id) + "@" + m.host + ":" + std::to_string(m.port) + ",";
  }
  cluster_id_ = Fnv1a(members);
}

void ServerContext::FillHeader(etcdserverpb::ResponseHeader* header, int64_t revision) const {
  header->set_cluster_id(cluster_id_);
  header->set_member_id(config_.node_id);
  header->set_revision(revision);
  header->set_raft_term(replicator_->Configuration().regular.id.seq);
}

std::chrono::milliseconds ServerContext::Timeout(const grpc::ServerContext* ctx) const {
  std::chrono::milliseconds t(10000);
  const auto deadline = ctx->deadline();
  const auto now = std::chrono::system_clock::now();
  if (deadline > now && deadline - now < t) {
    t = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
  }
  return std::max(t, std::chrono::milliseconds(1));
}

grpc::Status KvService::Range(grpc::ServerContext* c, const etcdserverpb::RangeRequest* req,
                              etcdserverpb::RangeResponse* resp) {
  if (grpc::Status v = ValidateRange(*req); !v.ok()) return v;
  if (!req->serializable()) {
    const totem::Status barrier = ctx_->replicator().ReadBarrier(ctx_->Timeout(c));
    if (!barrier.ok()) return ToGrpcStatus(barrier);
  }
  const ::kvstore::MvccStore& store = ctx_->replicator().store();
  totem::StatusOr<::kvstore::RangeResponse> r = store.Range(FromProto(*req));
  if (!r.ok()) return ToGrpcStatus(r.status());
  ToProto(*r, resp);
  ctx_->FillHeader(resp->mutable_header(), store.CurrentRevision());
  return grpc::Status::OK;
}

grpc::Status KvService::Put(grpc::ServerContext* c, const etcdserverpb::PutRequest* req,
                            etcdserverpb::PutResponse* resp) {
  if (grpc::Status v = ValidatePut(*req); !v.ok()) return v;
  pb::Op op;
  *op.mutable_put() = *req;
  return ProposeAndAnswer<::kvstore::PutResponse>(
      *ctx_, c, std::move(op), resp, [resp](const ::kvstore::PutResponse& r) { ToProto(r, resp); });
}

grpc::Status KvService::DeleteRange(grpc::ServerContext* c,
                                    const etcdserverpb::DeleteRangeRequest* req,
                                    etcdserverpb::DeleteRangeResponse* resp) {
  if (grpc::Status v = ValidateDeleteRange(*req); !v.ok()) return v;
  pb::Op op;
  *op.mutable_delete_range() = *req;
  return ProposeAndAnswer<::kvstore::DeleteRangeResponse>(
      *ctx_, c, std::move(op), resp,
      [resp](const ::kvstore::DeleteRangeResponse& r) { ToProto(r, resp); });
}

grpc::Status KvService::Txn(grpc::ServerContext* c, const etcdserverpb::TxnRequest* req,
                            etcdserverpb::TxnResponse* resp) {
  if (grpc::Status v = ValidateTxn(*req); !v.ok()) return v;
  pb::Op op;
  *op.mutable_txn() = *req;
  return ProposeAndAnswer<::kvstore::TxnResponse>(
      *ctx_, c, std::move(op), resp, [resp](const ::kvstore::TxnResponse& r) { ToProto(r, resp); });
}

grpc::Status KvService::Compact(grpc::ServerContext* c, const etcdserverpb::CompactionRequest* req,
                                etcdserverpb::CompactionResponse* resp) {
  pb::Op op;
  *op.mutable_compact() = *req;
  return ProposeAndAnswer<::kvstore::CompactionResponse>(
      *ctx_, c, std::move(op), resp, [](const ::kvstore::CompactionResponse&) {});
}

grpc::Status MaintenanceService::Status(grpc::ServerContext*, const etcdserverpb::StatusRequest*,
                                        etcdserverpb::StatusResponse* resp) {
  const Replicator& r = ctx_->replicator();
  const totem::ConfigurationView view = r.Configuration();
  ctx_->FillHeader(resp->mutable_header(), r.store().CurrentRevision());
  resp->set_version("3.5.0");
  const int64_t db = DirectoryBytes(ctx_->config().data_dir + "/db");
  resp->set_dbsize(db);
  resp->set_dbsizeinuse(db);
  resp->set_leader(view.regular.id.rep);
  resp->set_raftindex(r.applied_seq());
  resp->set_raftappliedindex(r.applied_seq());
  resp->set_raftterm(view.regular.id.seq);
  if (view.regular.id.seq == 0) resp->add_errors("totem: no ring formed yet");
  std::string standing_message;
  if (r.GetStanding(&standing_message) != Replicator::Standing::kCurrent &&
      !standing_message.empty()) {
    resp->add_errors(standing_message);
  }
  return grpc::Status::OK;
}

grpc::Status ClusterService::MemberList(grpc::ServerContext*,
                                        const etcdserverpb::MemberListRequest*,
                                        etcdserverpb::MemberListResponse* resp) {
  ctx_->FillHeader(resp->mutable_header(), ctx_->replicator().store().CurrentRevision());
  for (const ClusterMember& m : ctx_->config().cluster) {
    etcdserverpb::Member* out = resp->add_members();
    out->set_id(m.id);
    out->set_name(m.name);
    out->add_peerurls("udp://" + m.host + ":" + std::to_string(m.port));
    for (const std::string& url : m.client_urls) out->add_clienturls(url);
  }
  return grpc::Status::OK;
}

}  // namespace totemkv::server

// Handlers of the etcd v3 KV, Maintenance and Cluster services: validate,
// propose through the Replicator (or read locally), convert the store's
// answer to the etcd response and fill the header. See etcd_services.h.
#include "etcd_services.h"

#include <filesystem>
#include <variant>

#include "convert.h"
#include "hash_kv.h"
#include "snapshot_file.h"

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
    // Several rings: every ring address counts too (one ring: unchanged).
    for (size_t i = 0; config.MultiRing() && i < m.rings.size(); ++i) {
      members += "/" + std::to_string(m.rings[i].ring) + "@" + m.rings[i].host + ":" +
                 std::to_string(m.rings[i].port) + ",";
    }
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
  if (req->serializable()) {
    // Not a member of the primary component: the answer may be stale.
    std::string why;
    if (ctx_->replicator().GetStanding(&why) != Replicator::Standing::kCurrent) {
      c->AddInitialMetadata("totemkv-stale", why.empty() ? "totemkv: not primary" : why);
    }
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

grpc::Status MaintenanceService::HashKV(grpc::ServerContext*,
                                        const etcdserverpb::HashKVRequest* req,
                                        etcdserverpb::HashKVResponse* resp) {
  const ::kvstore::MvccStore& store = ctx_->replicator().store();
  const totem::StatusOr<KvHash> h = HashKv(store, req->revision());
  if (!h.ok()) return ToGrpcStatus(h.status());
  ctx_->FillHeader(resp->mutable_header(), store.CurrentRevision());
  resp->set_hash(h.value().hash);
  resp->set_compact_revision(h.value().compact_revision);
  resp->set_hash_revision(h.value().hash_revision);
  return grpc::Status::OK;
}

grpc::Status MaintenanceService::Snapshot(
    grpc::ServerContext* c, const etcdserverpb::SnapshotRequest*,
    grpc::ServerWriter<etcdserverpb::SnapshotResponse>* writer) {
  const ::kvstore::MvccStore& store = ctx_->replicator().store();
  SnapshotHeader header;
  header.member_id = ctx_->config().node_id;
  header.revision = store.CurrentRevision();
  header.compacted = store.CompactedRevision();
  auto source = store.ExportSnapshot();
  if (!source.ok()) return ToGrpcStatus(source.status());
  SnapshotStreamWriter stream(std::move(source).value(), header);
  etcdserverpb::SnapshotResponse resp;
  ctx_->FillHeader(resp.mutable_header(), header.revision);
  for (bool more = true; more;) {
    if (c->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "snapshot cancelled");
    totem::StatusOr<bool> next = stream.Next(1 << 20, resp.mutable_blob());
    if (!next.ok()) return ToGrpcStatus(next.status());
    more = *next;
    resp.set_remaining_bytes(more ? 32 : 0);  // at least the trailing SHA-256 is still to come
    if (!writer->Write(resp)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "snapshot stream closed by the client");
    }
    resp.clear_header();
  }
  return grpc::Status::OK;
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

namespace {

void ToMemberProto(const totemkv::kvstore::v1::MemberInfo& m, etcdserverpb::Member* out) {
  out->set_id(m.id());
  out->set_name(m.name());
  for (const std::string& u : m.peer_urls()) out->add_peerurls(u);
  for (const std::string& u : m.client_urls()) out->add_clienturls(u);
}

// "udp://host:port" or "http://host:port" (etcdctl's default scheme).
bool ValidPeerUrl(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return false;
  const std::string rest = url.substr(scheme + 3);
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) return false;
  const std::string port = rest.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
  return std::stoul(port) > 0 && std::stoul(port) < 65536;
}

}  // namespace

grpc::Status ClusterService::MemberList(grpc::ServerContext*,
                                        const etcdserverpb::MemberListRequest*,
                                        etcdserverpb::MemberListResponse* resp) {
  ctx_->FillHeader(resp->mutable_header(), ctx_->replicator().store().CurrentRevision());
  for (const totemkv::kvstore::v1::MemberInfo& m : ctx_->replicator().Members()) {
    ToMemberProto(m, resp->add_members());
  }
  return grpc::Status::OK;
}

grpc::Status ClusterService::MemberAdd(grpc::ServerContext* c,
                                       const etcdserverpb::MemberAddRequest* req,
                                       etcdserverpb::MemberAddResponse* resp) {
  if (req->islearner()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "totemkv: learner members are not supported");
  }
  if (req->peerurls().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "etcdserver: member peer URLs are not provided");
  }
  std::vector<totemkv::kvstore::v1::MemberInfo> members = ctx_->replicator().Members();
  totem::NodeId next = 1;
  for (const totemkv::kvstore::v1::MemberInfo& m : members) next = std::max(next, m.id() + 1);
  totemkv::kvstore::v1::MemberInfo info;
  info.set_id(next);
  for (const std::string& url : req->peerurls()) {
    if (!ValidPeerUrl(url)) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          "totemkv: bad peer URL \"" + url + "\" (want SCHEME://HOST:PORT, the Totem UDP address)");
    }
    for (const totemkv::kvstore::v1::MemberInfo& m : members) {
      for (const std::string& have : m.peer_urls()) {
        if (have.substr(have.find("://") + 3) == url.substr(url.find("://") + 3)) {
          return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                              "etcdserver: Peer URLs already exists");
        }
      }
    }
    info.add_peer_urls(url);
  }
  const totem::Status s = ctx_->replicator().ProposeMemberChange(true, info, ctx_->Timeout(c));
  if (!s.ok()) return ToGrpcStatus(s);
  ctx_->FillHeader(resp->mutable_header(), ctx_->replicator().store().CurrentRevision());
  ToMemberProto(info, resp->mutable_member());
  for (const totemkv::kvstore::v1::MemberInfo& m : ctx_->replicator().Members()) {
    ToMemberProto(m, resp->add_members());
  }
  return grpc::Status::OK;
}

grpc::Status ClusterService::MemberRemove(grpc::ServerContext* c,
                                          const etcdserverpb::MemberRemoveRequest* req,
                                          etcdserverpb::MemberRemoveResponse* resp) {
  const std::vector<totemkv::kvstore::v1::MemberInfo> members = ctx_->replicator().Members();
  const totemkv::kvstore::v1::MemberInfo* found = nullptr;
  for (const totemkv::kvstore::v1::MemberInfo& m : members) {
    if (m.id() == req->id()) found = &m;
  }
  if (found == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "etcdserver: member not found");
  }
  if (members.size() == 1) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "totemkv: cannot remove the last member");
  }
  const totem::Status s = ctx_->replicator().ProposeMemberChange(false, *found, ctx_->Timeout(c));
  if (!s.ok()) return ToGrpcStatus(s);
  ctx_->FillHeader(resp->mutable_header(), ctx_->replicator().store().CurrentRevision());
  for (const totemkv::kvstore::v1::MemberInfo& m : ctx_->replicator().Members()) {
    ToMemberProto(m, resp->add_members());
  }
  return grpc::Status::OK;
}

}  // namespace totemkv::server

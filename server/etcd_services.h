// The etcd v3 gRPC services totemkvd serves, on the synchronous gRPC API
// (a handler thread blocks while its op goes through the total order):
//  - KV: Put / DeleteRange / Txn / Compact go through Replicator::Propose
//    and answer after the local apply; Range reads local state, after a
//    shared read barrier unless serializable.
//  - Maintenance.Status: version "3.5.0", dbSize, leader = the Totem ring
//    representative, raftIndex = applied position (frame seq in the
//    current ring), raftTerm = ring seq.
//  - Maintenance.HashKV: etcd's keyspace hash from local state (hash_kv.h).
//  - Maintenance.Snapshot: a backup of this member's store (snapshot_file.h).
//  - Cluster.MemberList: the configured members (--initial-cluster), with
//    Totem addresses as peerURLs (udp://HOST:PORT) and the client URLs
//    from --initial-cluster-client-urls.
// Every response header carries {cluster_id (hash of the member list, equal
// on every node), member_id (= Totem node id), revision, raft_term (= ring
// seq)}. Watch is in watch_service.h, Lease in lease_service.h.
// Unimplemented methods (member changes, ...) answer UNIMPLEMENTED (gRPC's
// default).
#ifndef TOTEMKV_SERVER_ETCD_SERVICES_H_
#define TOTEMKV_SERVER_ETCD_SERVICES_H_

#include <chrono>
#include <cstdint>

#include "etcd/rpc.grpc.pb.h"
#include "replicator.h"
#include "server_config.h"

namespace totemkv::server {

// gRPC metadata key a client sets on a write (Put, DeleteRange, Txn,
// Compact, lease grant/revoke) to choose its op id: 32 hex digits. A retry
// of the same request with the same id — at this node or another — is
// applied at most once (the store remembers the last 100,000 ids) and is
// answered with the original status and revision.
inline constexpr char kOpIdMetadataKey[] = "totemkv-op-id";

// Reads kOpIdMetadataKey: empty if absent; INVALID_ARGUMENT if malformed.
grpc::Status ClientOpId(const grpc::ServerContext& c, std::string* op_id);

// What the services share: the replicator and the static cluster facts.
class ServerContext {
 public:
  ServerContext(const ServerConfig& config, Replicator* replicator);
  void FillHeader(etcdserverpb::ResponseHeader* header, int64_t revision) const;
  // How long a call may wait for the total order: 10 s, or less if the
  // client's deadline is sooner.
  std::chrono::milliseconds Timeout(const grpc::ServerContext* ctx) const;

  const ServerConfig& config() const { return config_; }
  Replicator& replicator() const { return *replicator_; }
  uint64_t cluster_id() const { return cluster_id_; }

 private:
  const ServerConfig& config_;
  Replicator* replicator_;
  uint64_t cluster_id_;
};

class KvService final : public etcdserverpb::KV::Service {
 public:
  explicit KvService(const ServerContext* ctx) : ctx_(ctx) {}
  grpc::Status Range(grpc::ServerContext* c, const etcdserverpb::RangeRequest* req,
                     etcdserverpb::RangeResponse* resp) override;
  grpc::Status Put(grpc::ServerContext* c, const etcdserverpb::PutRequest* req,
                   etcdserverpb::PutResponse* resp) override;
  grpc::Status DeleteRange(grpc::ServerContext* c, const etcdserverpb::DeleteRangeRequest* req,
                           etcdserverpb::DeleteRangeResponse* resp) override;
  grpc::Status Txn(grpc::ServerContext* c, const etcdserverpb::TxnRequest* req,
                   etcdserverpb::TxnResponse* resp) override;
  grpc::Status Compact(grpc::ServerContext* c, const etcdserverpb::CompactionRequest* req,
                       etcdserverpb::CompactionResponse* resp) override;

 private:
  const ServerContext* ctx_;
};

class MaintenanceService final : public etcdserverpb::Maintenance::Service {
 public:
  explicit MaintenanceService(const ServerContext* ctx) : ctx_(ctx) {}
  grpc::Status Status(grpc::ServerContext* c, const etcdserverpb::StatusRequest* req,
                      etcdserverpb::StatusResponse* resp) override;
  // This member's keyspace hash at a revision, from local state as etcd
  // (hash_kv.h: etcd's algorithm, so equal stores answer equal hashes).
  grpc::Status HashKV(grpc::ServerContext* c, const etcdserverpb::HashKVRequest* req,
                      etcdserverpb::HashKVResponse* resp) override;
  // Streams a point-in-time image of this member's store in totemkvd's
  // backup format (snapshot_file.h), in pieces of about 1 MiB. The first
  // response's header revision is the member's revision when the export
  // began; remaining_bytes is not known ahead: nonzero (a lower bound) until
  // the last response, which carries 0.
  grpc::Status Snapshot(grpc::ServerContext* c, const etcdserverpb::SnapshotRequest* req,
                        grpc::ServerWriter<etcdserverpb::SnapshotResponse>* writer) override;

 private:
  const ServerContext* ctx_;
};

class ClusterService final : public etcdserverpb::Cluster::Service {
 public:
  explicit ClusterService(const ServerContext* ctx) : ctx_(ctx) {}
  grpc::Status MemberList(grpc::ServerContext* c, const etcdserverpb::MemberListRequest* req,
                          etcdserverpb::MemberListResponse* resp) override;
  // Membership changes are ordered ops (the configured member set is
  // replicated state, see kvstore/replication.h). The new member's id is
  // the highest configured id + 1; it must then be started with that id
  // in its --initial-cluster entry. Learners are not supported.
  grpc::Status MemberAdd(grpc::ServerContext* c, const etcdserverpb::MemberAddRequest* req,
                         etcdserverpb::MemberAddResponse* resp) override;
  grpc::Status MemberRemove(grpc::ServerContext* c, const etcdserverpb::MemberRemoveRequest* req,
                            etcdserverpb::MemberRemoveResponse* resp) override;

 private:
  const ServerContext* ctx_;
};

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_ETCD_SERVICES_H_

// The etcd v3 Lease service of totemkvd (sync gRPC API). Grants, revokes
// and keep-alives are ordered ops (Replicator::Propose); expiry is the
// LeaseManager's (see lease_manager.h for the expiry rule and limits).
//  - LeaseGrant: ID 0 -> the server picks a positive int63 id not in use
//    (derived from the client op id when the client set one, so a retry at
//    any node picks the same id); an id in use -> FAILED_PRECONDITION
//    "etcdserver: lease already exists"; TTL > 9e9 -> OUT_OF_RANGE
//    "etcdserver: too large lease TTL"; TTL < 1 -> 1.
//  - LeaseRevoke: deletes the lease and its keys; unknown -> NOT_FOUND
//    "etcdserver: requested lease not found".
//  - LeaseKeepAlive: each request renews through one ordered op and is
//    answered {ID, TTL = granted TTL}; an unknown lease is answered TTL 0
//    and the stream stays open (as etcd). The header is taken before the
//    renewal, as etcd does. Keep-alives never use the client op id (every
//    request of a stream must apply).
//  - LeaseTimeToLive / LeaseLeases: after a read barrier (so a grant made
//    at another node is visible); TTL = remaining seconds by this node's
//    clock; unknown lease -> TTL -1 (as etcd).
#ifndef TOTEMKV_SERVER_LEASE_SERVICE_H_
#define TOTEMKV_SERVER_LEASE_SERVICE_H_

#include <mutex>
#include <random>

#include "etcd/rpc.grpc.pb.h"
#include "etcd_services.h"
#include "lease_manager.h"

namespace totemkv::server {

class LeaseService final : public etcdserverpb::Lease::Service {
 public:
  // Both must outlive the service.
  LeaseService(const ServerContext* ctx, const LeaseManager* leases);

  grpc::Status LeaseGrant(grpc::ServerContext* c, const etcdserverpb::LeaseGrantRequest* req,
                          etcdserverpb::LeaseGrantResponse* resp) override;
  grpc::Status LeaseRevoke(grpc::ServerContext* c, const etcdserverpb::LeaseRevokeRequest* req,
                           etcdserverpb::LeaseRevokeResponse* resp) override;
  grpc::Status LeaseKeepAlive(
      grpc::ServerContext* c,
      grpc::ServerReaderWriter<etcdserverpb::LeaseKeepAliveResponse,
                               etcdserverpb::LeaseKeepAliveRequest>* stream) override;
  grpc::Status LeaseTimeToLive(grpc::ServerContext* c,
                               const etcdserverpb::LeaseTimeToLiveRequest* req,
                               etcdserverpb::LeaseTimeToLiveResponse* resp) override;
  grpc::Status LeaseLeases(grpc::ServerContext* c, const etcdserverpb::LeaseLeasesRequest* req,
                           etcdserverpb::LeaseLeasesResponse* resp) override;

 private:
  // A random positive int63 lease id that the local store does not hold.
  int64_t RandomUnusedId();

  const ServerContext* ctx_;
  const LeaseManager* leases_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;  // guarded by rng_mu_
};

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_LEASE_SERVICE_H_

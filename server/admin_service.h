// totemkv.admin.v1.Admin (proto/admin/admin.proto): the Totem view of a
// totemkvd node for operators, served on the client port next to the etcd
// services. Read-only and cheap; nothing here goes through the total order.
//  - GetRing: the last regular configuration (Replicator::Configuration),
//    the membership state and the mean token rotation time measured by the
//    Totem runtime (totem::Node::GetRingStatus).
//  - ListConfigurations: Replicator::ConfigurationHistory, newest `limit`.
//  - GetCounters: every totem::Counters field by name (Counters::Fields),
//    Replicator::StoreCounters, uptime since the service was built.
//  - GetStoreChecksum: MvccStore::Checksum with the revision and applied
//    position it covers, read between two batches (retried while the
//    apply thread moves on).
// Deviation, until the primary-component issue lands: `primary` means only
// "a regular configuration is installed, no transition is under way, and
// it holds a strict majority of the members in --initial-cluster"; there
// is no state exchange yet, and every node still applies every op it is
// delivered.
#ifndef TOTEMKV_SERVER_ADMIN_SERVICE_H_
#define TOTEMKV_SERVER_ADMIN_SERVICE_H_

#include <chrono>
#include <vector>

#include "admin/admin.grpc.pb.h"
#include "etcd_services.h"
#include "replicator.h"
#include "server_config.h"
#include "totem/node.h"

namespace totemkv::server {

totemkv::admin::v1::RingState RingStateToProto(totem::RingState state);
void ConfigurationToProto(const Replicator::ConfigurationRecord& record,
                          totemkv::admin::v1::ConfigurationEvent* out);

class AdminService final : public totemkv::admin::v1::Admin::Service {
 public:
  // `ctx` must outlive the service. Uptime counts from construction.
  explicit AdminService(const ServerContext* ctx);

  grpc::Status GetRing(grpc::ServerContext* c, const totemkv::admin::v1::GetRingRequest* req,
                       totemkv::admin::v1::GetRingResponse* resp) override;
  grpc::Status ListConfigurations(grpc::ServerContext* c,
                                  const totemkv::admin::v1::ListConfigurationsRequest* req,
                                  totemkv::admin::v1::ListConfigurationsResponse* resp) override;
  grpc::Status GetCounters(grpc::ServerContext* c,
                           const totemkv::admin::v1::GetCountersRequest* req,
                           totemkv::admin::v1::GetCountersResponse* resp) override;
  grpc::Status GetStoreChecksum(grpc::ServerContext* c,
                                const totemkv::admin::v1::GetStoreChecksumRequest* req,
                                totemkv::admin::v1::GetStoreChecksumResponse* resp) override;

 private:
  const ServerContext* ctx_;
  const std::chrono::steady_clock::time_point started_;
};

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_ADMIN_SERVICE_H_

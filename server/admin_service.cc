// The Admin service (admin_service.h): translation from the Replicator's
// and the Totem node's views into totemkv.admin.v1 messages.
#include "admin_service.h"

#include <algorithm>
#include <string>

#include "convert.h"
#include "kvstore/mvcc_store.h"

namespace totemkv::server {

namespace pb = totemkv::admin::v1;

pb::RingState RingStateToProto(totem::RingState state) {
  switch (state) {
    case totem::RingState::kOperational:
      return pb::RING_STATE_OPERATIONAL;
    case totem::RingState::kGather:
      return pb::RING_STATE_GATHER;
    case totem::RingState::kCommit:
      return pb::RING_STATE_COMMIT;
    case totem::RingState::kRecovery:
      return pb::RING_STATE_RECOVERY;
  }
  return pb::RING_STATE_UNSPECIFIED;
}

void ConfigurationToProto(const Replicator::ConfigurationRecord& record,
                          pb::ConfigurationEvent* out) {
  const totem::ConfigurationEvent& e = record.event;
  out->set_kind(e.kind == totem::ConfigurationKind::kRegular ? pb::CONFIGURATION_KIND_REGULAR
                                                             : pb::CONFIGURATION_KIND_TRANSITIONAL);
  out->mutable_id()->set_representative(e.id.rep);
  out->mutable_id()->set_seq(e.id.seq);
  for (totem::NodeId id : e.members) out->add_members(id);
  for (totem::NodeId id : e.joined) out->add_joined(id);
  for (totem::NodeId id : e.left) out->add_left(id);
  out->set_time_unix_us(record.time_unix_us);
}

AdminService::AdminService(const ServerContext* ctx)
    : ctx_(ctx), started_(std::chrono::steady_clock::now()) {}

grpc::Status AdminService::GetRing(grpc::ServerContext*, const pb::GetRingRequest*,
                                   pb::GetRingResponse* resp) {
  Replicator& r = ctx_->replicator();
  const totem::ConfigurationView view = r.Configuration();
  const totem::RingStatus status = r.GetRingStatus();
  resp->set_node_id(r.node_id());
  resp->mutable_ring_id()->set_representative(view.regular.id.rep);
  resp->mutable_ring_id()->set_seq(view.regular.id.seq);
  for (totem::NodeId id : view.regular.members) resp->add_members(id);
  resp->set_state(RingStateToProto(status.state));
  resp->set_representative(view.regular.id.rep);
  resp->set_in_transition(view.in_transition);
  // Current = a majority of the configured members and a finished
  // member-state exchange in which no member had applied more writes.
  resp->set_primary(r.GetStanding(nullptr) == Replicator::Standing::kCurrent);
  resp->set_token_rotation_us(status.mean_token_rotation_us);
  const Ordering::GlobalView global = r.GlobalView();
  for (uint32_t ring : global.local_rings) resp->add_local_rings(ring);
  for (uint32_t ring : global.reachable_rings) resp->add_reachable_rings(ring);
  return grpc::Status::OK;
}

grpc::Status AdminService::ListConfigurations(grpc::ServerContext*,
                                              const pb::ListConfigurationsRequest* req,
                                              pb::ListConfigurationsResponse* resp) {
  uint64_t dropped = 0;
  const std::vector<Replicator::ConfigurationRecord> history =
      ctx_->replicator().ConfigurationHistory(&dropped);
  size_t first = 0;
  if (req->limit() != 0 && history.size() > req->limit()) first = history.size() - req->limit();
  for (size_t i = first; i < history.size(); ++i)
    ConfigurationToProto(history[i], resp->add_events());
  resp->set_dropped(dropped + first);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetCounters(grpc::ServerContext*, const pb::GetCountersRequest*,
                                       pb::GetCountersResponse* resp) {
  Replicator& r = ctx_->replicator();
  resp->set_node_id(r.node_id());
  for (const auto& [name, value] : r.TotemCounters().Fields()) {
    (*resp->mutable_totem())[std::string(name)] = value;
  }
  // Several rings: the first local ring's counters above, the multiple-ring
  // layer's (mring_*) here.
  for (const auto& [name, value] : r.MultiRingCounters()) (*resp->mutable_totem())[name] = value;
  for (const auto& [name, value] : r.StoreCounters()) (*resp->mutable_store())[name] = value;
  resp->set_uptime_ms(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::steady_clock::now() - started_)
                                                .count()));
  return grpc::Status::OK;
}

grpc::Status AdminService::GetStoreChecksum(grpc::ServerContext*,
                                            const pb::GetStoreChecksumRequest*,
                                            pb::GetStoreChecksumResponse* resp) {
  const Replicator& r = ctx_->replicator();
  const ::kvstore::MvccStore& store = r.store();
  // Checksum() takes the store mutex once; the other fields are read
  // separately, so accept the answer only if no batch was applied between
  // the reads before and after it (each batch moves the position).
  constexpr int kAttempts = 20;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const ::kvstore::AppliedPosition before = store.Position();
    const int64_t revision = store.CurrentRevision();
    const int64_t compacted = store.CompactedRevision();
    const uint64_t writes = store.AppliedWrites();
    const ::kvstore::StatusOr<uint64_t> checksum = store.Checksum();
    if (!checksum.ok()) return ToGrpcStatus(checksum.status());
    if (!(store.Position() == before) || store.CurrentRevision() != revision ||
        store.AppliedWrites() != writes) {
      continue;
    }
    resp->set_node_id(r.node_id());
    resp->set_checksum(checksum.value());
    resp->set_revision(revision);
    resp->set_compact_revision(compacted);
    resp->set_applied_config_id(before.config_id);
    resp->set_applied_seq(before.seq);
    resp->set_applied_writes(writes);
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the store applied a batch during each of " +
                                                         std::to_string(kAttempts) +
                                                         " checksum attempts; retry");
}

}  // namespace totemkv::server

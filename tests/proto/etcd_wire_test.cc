// Checks that our etcd v3 .proto files put every field on the wire where
// etcd does: serialized bytes against hand-computed etcd encodings, a
// table of (message, field, number, type) taken from etcd's
// api/etcdserverpb/rpc.proto and api/mvccpb/kv.proto, and the full gRPC
// method names clients call. A wrong field number or name fails here.
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "admin/admin.grpc.pb.h"
#include "etcd/kv.pb.h"
#include "etcd/rpc.grpc.pb.h"
#include "etcd/rpc.pb.h"
#include "kvstore/ops.pb.h"

namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;

std::string Bytes(std::initializer_list<uint8_t> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

std::string Serialize(const google::protobuf::Message& m) {
  std::string out;
  EXPECT_TRUE(m.SerializeToString(&out));
  return out;
}

TEST(EtcdWire, PutRequest_MatchesEtcdBytes) {
  etcdserverpb::PutRequest put;
  put.set_key("foo");
  put.set_value("bar");
  put.set_lease(5);
  put.set_prev_kv(true);
  EXPECT_EQ(Serialize(put), Bytes({0x0a, 0x03, 'f', 'o', 'o',  // 1 key
                                   0x12, 0x03, 'b', 'a', 'r',  // 2 value
                                   0x18, 0x05,                 // 3 lease
                                   0x20, 0x01}));              // 4 prev_kv
}

TEST(EtcdWire, RangeRequest_MatchesEtcdBytes) {
  etcdserverpb::RangeRequest range;
  range.set_key("a");
  range.set_range_end("b");
  range.set_limit(10);
  range.set_revision(7);
  range.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
  range.set_sort_target(etcdserverpb::RangeRequest::MOD);
  range.set_serializable(true);
  range.set_keys_only(true);
  range.set_count_only(true);
  range.set_min_mod_revision(1);
  range.set_max_create_revision(13);
  EXPECT_EQ(Serialize(range), Bytes({0x0a, 0x01, 'a',  // 1 key
                                     0x12, 0x01, 'b',  // 2 range_end
                                     0x18, 0x0a,       // 3 limit
                                     0x20, 0x07,       // 4 revision
                                     0x28, 0x02,       // 5 sort_order DESCEND
                                     0x30, 0x03,       // 6 sort_target MOD
                                     0x38, 0x01,       // 7 serializable
                                     0x40, 0x01,       // 8 keys_only
                                     0x48, 0x01,       // 9 count_only
                                     0x50, 0x01,       // 10 min_mod_revision
                                     0x68, 0x0d}));    // 13 max_create_revision
}

TEST(EtcdWire, Compare_MatchesEtcdBytes) {
  etcdserverpb::Compare cmp;
  cmp.set_result(etcdserverpb::Compare::LESS);
  cmp.set_target(etcdserverpb::Compare::MOD);
  cmp.set_key("k");
  cmp.set_mod_revision(42);
  cmp.set_range_end("l");
  EXPECT_EQ(Serialize(cmp), Bytes({0x08, 0x02,                // 1 result LESS
                                   0x10, 0x02,                // 2 target MOD
                                   0x1a, 0x01, 'k',           // 3 key
                                   0x30, 0x2a,                // 6 mod_revision
                                   0x82, 0x04, 0x01, 'l'}));  // 64 range_end
}

TEST(EtcdWire, TxnRequest_MatchesEtcdBytes) {
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_target(etcdserverpb::Compare::VALUE);
  cmp->set_key("k");
  cmp->set_value("v");
  txn.add_success()->mutable_request_put()->set_key("k");
  txn.add_failure()->mutable_request_range()->set_key("k");
  EXPECT_EQ(Serialize(txn),
            Bytes({0x0a, 0x08, 0x10, 0x03, 0x1a, 0x01, 'k', 0x3a, 0x01, 'v',  // 1 compare
                   0x12, 0x05, 0x12, 0x03, 0x0a, 0x01, 'k',     // 2 success{2 request_put}
                   0x1a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 'k'}));  // 3 failure{1 request_range}
}

TEST(EtcdWire, WatchRequest_MatchesEtcdBytes) {
  etcdserverpb::WatchRequest req;
  auto* create = req.mutable_create_request();
  create->set_key("w");
  create->set_start_revision(3);
  create->set_progress_notify(true);
  create->add_filters(etcdserverpb::WatchCreateRequest::NODELETE);
  create->set_prev_kv(true);
  create->set_watch_id(9);
  create->set_fragment(true);
  EXPECT_EQ(Serialize(req), Bytes({0x0a, 0x10,        // 1 create_request (16 bytes)
                                   0x0a, 0x01, 'w',   // 1 key
                                   0x18, 0x03,        // 3 start_revision
                                   0x20, 0x01,        // 4 progress_notify
                                   0x2a, 0x01, 0x01,  // 5 filters (packed) NODELETE
                                   0x30, 0x01,        // 6 prev_kv
                                   0x38, 0x09,        // 7 watch_id
                                   0x40, 0x01}));     // 8 fragment

  etcdserverpb::WatchRequest cancel;
  cancel.mutable_cancel_request()->set_watch_id(9);
  EXPECT_EQ(Serialize(cancel), Bytes({0x12, 0x02, 0x08, 0x09}));
  etcdserverpb::WatchRequest progress;
  progress.mutable_progress_request();
  EXPECT_EQ(Serialize(progress), Bytes({0x1a, 0x00}));
}

TEST(EtcdWire, WatchResponse_MatchesEtcdBytes) {
  etcdserverpb::WatchResponse resp;
  resp.mutable_header()->set_revision(4);
  resp.set_watch_id(2);
  resp.set_canceled(true);
  resp.set_compact_revision(3);
  resp.set_cancel_reason("x");
  resp.set_fragment(true);
  auto* ev = resp.add_events();
  ev->set_type(mvccpb::Event::DELETE);
  ev->mutable_kv()->set_mod_revision(4);
  EXPECT_EQ(Serialize(resp), Bytes({0x0a, 0x02, 0x18, 0x04,     // 1 header{3 revision}
                                    0x10, 0x02,                 // 2 watch_id
                                    0x20, 0x01,                 // 4 canceled
                                    0x28, 0x03,                 // 5 compact_revision
                                    0x32, 0x01, 'x',            // 6 cancel_reason
                                    0x38, 0x01,                 // 7 fragment
                                    0x5a, 0x06,                 // 11 events
                                    0x08, 0x01,                 //   1 type DELETE
                                    0x12, 0x02, 0x18, 0x04}));  // 2 kv{3 mod_revision}
}

TEST(EtcdWire, KeyValue_MatchesEtcdBytes) {
  mvccpb::KeyValue kv;
  kv.set_key("k");
  kv.set_create_revision(2);
  kv.set_mod_revision(3);
  kv.set_version(4);
  kv.set_value("v");
  kv.set_lease(6);
  EXPECT_EQ(Serialize(kv), Bytes({0x0a, 0x01, 'k', 0x10, 0x02, 0x18, 0x03, 0x20, 0x04, 0x2a, 0x01,
                                  'v', 0x30, 0x06}));
}

TEST(EtcdWire, StatusAndMember_MatchEtcdBytes) {
  etcdserverpb::StatusResponse status;
  status.set_version("3");
  status.set_dbsize(1);
  status.set_leader(2);
  status.set_raftindex(3);
  status.set_raftterm(4);
  status.set_raftappliedindex(5);
  status.add_errors("e");
  status.set_dbsizeinuse(6);
  status.set_islearner(true);
  EXPECT_EQ(Serialize(status), Bytes({0x12, 0x01, '3',  0x18, 0x01, 0x20, 0x02, 0x28, 0x03, 0x30,
                                      0x04, 0x38, 0x05, 0x42, 0x01, 'e',  0x48, 0x06, 0x50, 0x01}));

  etcdserverpb::Member member;
  member.set_id(1);
  member.set_name("n");
  member.add_peerurls("p");
  member.add_clienturls("c");
  member.set_islearner(true);
  EXPECT_EQ(Serialize(member),
            Bytes({0x08, 0x01, 0x12, 0x01, 'n', 0x1a, 0x01, 'p', 0x22, 0x01, 'c', 0x28, 0x01}));
}

// (message, field, number, type) as declared by etcd. Covers the fields not
// pinned by the byte tests above.
struct FieldSpec {
  const char* message;
  const char* field;
  int number;
  FieldDescriptor::Type type;
};

TEST(EtcdWire, FieldTable_MatchesEtcd) {
  using T = FieldDescriptor;
  const std::vector<FieldSpec> specs = {
      {"etcdserverpb.ResponseHeader", "cluster_id", 1, T::TYPE_UINT64},
      {"etcdserverpb.ResponseHeader", "member_id", 2, T::TYPE_UINT64},
      {"etcdserverpb.ResponseHeader", "revision", 3, T::TYPE_INT64},
      {"etcdserverpb.ResponseHeader", "raft_term", 4, T::TYPE_UINT64},
      {"etcdserverpb.RangeRequest", "max_mod_revision", 11, T::TYPE_INT64},
      {"etcdserverpb.RangeRequest", "min_create_revision", 12, T::TYPE_INT64},
      {"etcdserverpb.RangeResponse", "header", 1, T::TYPE_MESSAGE},
      {"etcdserverpb.RangeResponse", "kvs", 2, T::TYPE_MESSAGE},
      {"etcdserverpb.RangeResponse", "more", 3, T::TYPE_BOOL},
      {"etcdserverpb.RangeResponse", "count", 4, T::TYPE_INT64},
      {"etcdserverpb.PutRequest", "ignore_value", 5, T::TYPE_BOOL},
      {"etcdserverpb.PutRequest", "ignore_lease", 6, T::TYPE_BOOL},
      {"etcdserverpb.PutResponse", "prev_kv", 2, T::TYPE_MESSAGE},
      {"etcdserverpb.DeleteRangeRequest", "key", 1, T::TYPE_BYTES},
      {"etcdserverpb.DeleteRangeRequest", "range_end", 2, T::TYPE_BYTES},
      {"etcdserverpb.DeleteRangeRequest", "prev_kv", 3, T::TYPE_BOOL},
      {"etcdserverpb.DeleteRangeResponse", "deleted", 2, T::TYPE_INT64},
      {"etcdserverpb.DeleteRangeResponse", "prev_kvs", 3, T::TYPE_MESSAGE},
      {"etcdserverpb.RequestOp", "request_delete_range", 3, T::TYPE_MESSAGE},
      {"etcdserverpb.RequestOp", "request_txn", 4, T::TYPE_MESSAGE},
      {"etcdserverpb.ResponseOp", "response_range", 1, T::TYPE_MESSAGE},
      {"etcdserverpb.ResponseOp", "response_put", 2, T::TYPE_MESSAGE},
      {"etcdserverpb.ResponseOp", "response_delete_range", 3, T::TYPE_MESSAGE},
      {"etcdserverpb.ResponseOp", "response_txn", 4, T::TYPE_MESSAGE},
      {"etcdserverpb.Compare", "version", 4, T::TYPE_INT64},
      {"etcdserverpb.Compare", "create_revision", 5, T::TYPE_INT64},
      {"etcdserverpb.Compare", "lease", 8, T::TYPE_INT64},
      {"etcdserverpb.TxnResponse", "succeeded", 2, T::TYPE_BOOL},
      {"etcdserverpb.TxnResponse", "responses", 3, T::TYPE_MESSAGE},
      {"etcdserverpb.CompactionRequest", "revision", 1, T::TYPE_INT64},
      {"etcdserverpb.CompactionRequest", "physical", 2, T::TYPE_BOOL},
      {"etcdserverpb.WatchCreateRequest", "range_end", 2, T::TYPE_BYTES},
      {"etcdserverpb.WatchResponse", "created", 3, T::TYPE_BOOL},
      {"etcdserverpb.LeaseGrantRequest", "TTL", 1, T::TYPE_INT64},
      {"etcdserverpb.LeaseGrantRequest", "ID", 2, T::TYPE_INT64},
      {"etcdserverpb.LeaseGrantResponse", "ID", 2, T::TYPE_INT64},
      {"etcdserverpb.LeaseGrantResponse", "TTL", 3, T::TYPE_INT64},
      {"etcdserverpb.LeaseGrantResponse", "error", 4, T::TYPE_STRING},
      {"etcdserverpb.LeaseRevokeRequest", "ID", 1, T::TYPE_INT64},
      {"etcdserverpb.LeaseKeepAliveRequest", "ID", 1, T::TYPE_INT64},
      {"etcdserverpb.LeaseKeepAliveResponse", "ID", 2, T::TYPE_INT64},
      {"etcdserverpb.LeaseKeepAliveResponse", "TTL", 3, T::TYPE_INT64},
      {"etcdserverpb.LeaseTimeToLiveRequest", "keys", 2, T::TYPE_BOOL},
      {"etcdserverpb.LeaseTimeToLiveResponse", "TTL", 3, T::TYPE_INT64},
      {"etcdserverpb.LeaseTimeToLiveResponse", "grantedTTL", 4, T::TYPE_INT64},
      {"etcdserverpb.LeaseTimeToLiveResponse", "keys", 5, T::TYPE_BYTES},
      {"etcdserverpb.LeaseLeasesResponse", "leases", 2, T::TYPE_MESSAGE},
      {"etcdserverpb.LeaseStatus", "ID", 1, T::TYPE_INT64},
      {"etcdserverpb.MemberAddRequest", "peerURLs", 1, T::TYPE_STRING},
      {"etcdserverpb.MemberAddRequest", "isLearner", 2, T::TYPE_BOOL},
      {"etcdserverpb.MemberAddResponse", "member", 2, T::TYPE_MESSAGE},
      {"etcdserverpb.MemberAddResponse", "members", 3, T::TYPE_MESSAGE},
      {"etcdserverpb.MemberRemoveRequest", "ID", 1, T::TYPE_UINT64},
      {"etcdserverpb.MemberUpdateRequest", "peerURLs", 2, T::TYPE_STRING},
      {"etcdserverpb.MemberListRequest", "linearizable", 1, T::TYPE_BOOL},
      {"etcdserverpb.MemberListResponse", "members", 2, T::TYPE_MESSAGE},
      {"etcdserverpb.MemberPromoteRequest", "ID", 1, T::TYPE_UINT64},
      {"etcdserverpb.AlarmRequest", "action", 1, T::TYPE_ENUM},
      {"etcdserverpb.AlarmRequest", "memberID", 2, T::TYPE_UINT64},
      {"etcdserverpb.AlarmRequest", "alarm", 3, T::TYPE_ENUM},
      {"etcdserverpb.AlarmMember", "alarm", 2, T::TYPE_ENUM},
      {"etcdserverpb.AlarmResponse", "alarms", 2, T::TYPE_MESSAGE},
      {"etcdserverpb.StatusResponse", "header", 1, T::TYPE_MESSAGE},
      {"etcdserverpb.StatusResponse", "storageVersion", 11, T::TYPE_STRING},
      {"etcdserverpb.StatusResponse", "dbSizeQuota", 12, T::TYPE_INT64},
      {"etcdserverpb.HashResponse", "hash", 2, T::TYPE_UINT32},
      {"etcdserverpb.HashKVRequest", "revision", 1, T::TYPE_INT64},
      {"etcdserverpb.HashKVResponse", "hash", 2, T::TYPE_UINT32},
      {"etcdserverpb.HashKVResponse", "compact_revision", 3, T::TYPE_INT64},
      {"etcdserverpb.SnapshotResponse", "remaining_bytes", 2, T::TYPE_UINT64},
      {"etcdserverpb.SnapshotResponse", "blob", 3, T::TYPE_BYTES},
      {"etcdserverpb.MoveLeaderRequest", "targetID", 1, T::TYPE_UINT64},
      {"etcdserverpb.DowngradeRequest", "version", 2, T::TYPE_STRING},
      {"mvccpb.Event", "prev_kv", 3, T::TYPE_MESSAGE},
  };
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  for (const FieldSpec& spec : specs) {
    SCOPED_TRACE(std::string(spec.message) + "." + spec.field);
    const auto* message = pool->FindMessageTypeByName(spec.message);
    ASSERT_NE(message, nullptr);
    const FieldDescriptor* field = message->FindFieldByName(spec.field);
    ASSERT_NE(field, nullptr);
    EXPECT_EQ(field->number(), spec.number);
    EXPECT_EQ(field->type(), spec.type);
  }
}

TEST(EtcdWire, EnumValues_MatchEtcd) {
  EXPECT_EQ(etcdserverpb::RangeRequest::NONE, 0);
  EXPECT_EQ(etcdserverpb::RangeRequest::ASCEND, 1);
  EXPECT_EQ(etcdserverpb::RangeRequest::DESCEND, 2);
  EXPECT_EQ(etcdserverpb::RangeRequest::KEY, 0);
  EXPECT_EQ(etcdserverpb::RangeRequest::VERSION, 1);
  EXPECT_EQ(etcdserverpb::RangeRequest::CREATE, 2);
  EXPECT_EQ(etcdserverpb::RangeRequest::MOD, 3);
  EXPECT_EQ(etcdserverpb::RangeRequest::VALUE, 4);
  EXPECT_EQ(etcdserverpb::Compare::EQUAL, 0);
  EXPECT_EQ(etcdserverpb::Compare::GREATER, 1);
  EXPECT_EQ(etcdserverpb::Compare::LESS, 2);
  EXPECT_EQ(etcdserverpb::Compare::NOT_EQUAL, 3);
  EXPECT_EQ(etcdserverpb::Compare::VERSION, 0);
  EXPECT_EQ(etcdserverpb::Compare::CREATE, 1);
  EXPECT_EQ(etcdserverpb::Compare::MOD, 2);
  EXPECT_EQ(etcdserverpb::Compare::VALUE, 3);
  EXPECT_EQ(etcdserverpb::Compare::LEASE, 4);
  EXPECT_EQ(etcdserverpb::WatchCreateRequest::NOPUT, 0);
  EXPECT_EQ(etcdserverpb::WatchCreateRequest::NODELETE, 1);
  EXPECT_EQ(etcdserverpb::NONE, 0);
  EXPECT_EQ(etcdserverpb::NOSPACE, 1);
  EXPECT_EQ(etcdserverpb::CORRUPT, 2);
  EXPECT_EQ(etcdserverpb::AlarmRequest::GET, 0);
  EXPECT_EQ(etcdserverpb::AlarmRequest::ACTIVATE, 1);
  EXPECT_EQ(etcdserverpb::AlarmRequest::DEACTIVATE, 2);
  EXPECT_EQ(mvccpb::Event::PUT, 0);
  EXPECT_EQ(mvccpb::Event::DELETE, 1);
}

// The path a gRPC client sends: "/<package>.<Service>/<Method>".
std::string MethodPath(const std::string& service, const std::string& method) {
  const auto* s = DescriptorPool::generated_pool()->FindServiceByName(service);
  if (s == nullptr) return "no service " + service;
  const auto* m = s->FindMethodByName(method);
  if (m == nullptr) return "no method " + method;
  return "/" + s->full_name() + "/" + m->name();
}

TEST(EtcdServices, MethodNames_MatchEtcd) {
  EXPECT_STREQ(etcdserverpb::KV::service_full_name(), "etcdserverpb.KV");
  EXPECT_STREQ(etcdserverpb::Watch::service_full_name(), "etcdserverpb.Watch");
  EXPECT_STREQ(etcdserverpb::Lease::service_full_name(), "etcdserverpb.Lease");
  EXPECT_STREQ(etcdserverpb::Cluster::service_full_name(), "etcdserverpb.Cluster");
  EXPECT_STREQ(etcdserverpb::Maintenance::service_full_name(), "etcdserverpb.Maintenance");
  EXPECT_STREQ(totemkv::admin::v1::Admin::service_full_name(), "totemkv.admin.v1.Admin");

  EXPECT_EQ(MethodPath("etcdserverpb.KV", "Range"), "/etcdserverpb.KV/Range");
  EXPECT_EQ(MethodPath("etcdserverpb.Watch", "Watch"), "/etcdserverpb.Watch/Watch");
  EXPECT_EQ(MethodPath("etcdserverpb.Lease", "LeaseKeepAlive"),
            "/etcdserverpb.Lease/LeaseKeepAlive");
  EXPECT_EQ(MethodPath("etcdserverpb.Maintenance", "Status"), "/etcdserverpb.Maintenance/Status");
  EXPECT_EQ(MethodPath("etcdserverpb.Cluster", "MemberList"), "/etcdserverpb.Cluster/MemberList");

  const std::vector<std::pair<std::string, std::vector<std::string>>> all = {
      {"etcdserverpb.KV", {"Range", "Put", "DeleteRange", "Txn", "Compact"}},
      {"etcdserverpb.Watch", {"Watch"}},
      {"etcdserverpb.Lease",
       {"LeaseGrant", "LeaseRevoke", "LeaseKeepAlive", "LeaseTimeToLive", "LeaseLeases"}},
      {"etcdserverpb.Cluster",
       {"MemberAdd", "MemberRemove", "MemberUpdate", "MemberList", "MemberPromote"}},
      {"etcdserverpb.Maintenance",
       {"Alarm", "Status", "Defragment", "Hash", "HashKV", "Snapshot", "MoveLeader", "Downgrade"}},
  };
  for (const auto& [service, methods] : all) {
    for (const auto& method : methods) {
      EXPECT_EQ(MethodPath(service, method), "/" + service + "/" + method);
    }
  }
}

TEST(EtcdServices, Streaming_MatchesEtcd) {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  const auto* watch = pool->FindMethodByName("etcdserverpb.Watch.Watch");
  ASSERT_NE(watch, nullptr);
  EXPECT_TRUE(watch->client_streaming());
  EXPECT_TRUE(watch->server_streaming());
  const auto* keep_alive = pool->FindMethodByName("etcdserverpb.Lease.LeaseKeepAlive");
  ASSERT_NE(keep_alive, nullptr);
  EXPECT_TRUE(keep_alive->client_streaming());
  EXPECT_TRUE(keep_alive->server_streaming());
  const auto* snapshot = pool->FindMethodByName("etcdserverpb.Maintenance.Snapshot");
  ASSERT_NE(snapshot, nullptr);
  EXPECT_FALSE(snapshot->client_streaming());
  EXPECT_TRUE(snapshot->server_streaming());
  const auto* range = pool->FindMethodByName("etcdserverpb.KV.Range");
  ASSERT_NE(range, nullptr);
  EXPECT_FALSE(range->client_streaming());
  EXPECT_FALSE(range->server_streaming());
}

TEST(KvstoreOps, OpBatch_RoundTrips) {
  totemkv::kvstore::v1::OpBatch batch;
  auto* op = batch.add_ops();
  op->set_op_id(std::string(16, '\x01'));
  op->set_origin_node(3);
  op->mutable_put()->set_key("foo");
  auto* expire = batch.add_ops();
  expire->mutable_lease_expire()->set_id(7);
  expire->mutable_lease_expire()->set_generation(2);

  totemkv::kvstore::v1::OpBatch parsed;
  ASSERT_TRUE(parsed.ParseFromString(Serialize(batch)));
  ASSERT_EQ(parsed.ops_size(), 2);
  EXPECT_EQ(parsed.ops(0).body_case(), totemkv::kvstore::v1::Op::kPut);
  EXPECT_EQ(parsed.ops(0).put().key(), "foo");
  EXPECT_EQ(parsed.ops(0).origin_node(), 3u);
  EXPECT_EQ(parsed.ops(1).lease_expire().generation(), 2u);
}

}  // namespace

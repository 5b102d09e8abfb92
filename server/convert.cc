// Field-by-field conversions between etcd's wire messages and the kvstore
// types (which mirror them), and the store-error to gRPC-status mapping
// after etcd's api/v3rpc/rpctypes.
#include "convert.h"

#include <string_view>

namespace totemkv::server {
namespace {

using grpc::StatusCode;

template <typename E, typename P>
E Enum(P v) {
  return static_cast<E>(static_cast<int>(v));
}

::kvstore::Compare CompareFromProto(const etcdserverpb::Compare& c) {
  ::kvstore::Compare out;
  out.result = Enum<::kvstore::Compare::Result>(c.result());
  out.target = Enum<::kvstore::Compare::Target>(c.target());
  out.key = c.key();
  out.range_end = c.range_end();
  out.version = c.version();
  out.create_revision = c.create_revision();
  out.mod_revision = c.mod_revision();
  out.value = c.value();
  out.lease = c.lease();
  return out;
}

::kvstore::RequestOp RequestOpFromProto(const etcdserverpb::RequestOp& op) {
  ::kvstore::RequestOp out;
  switch (op.request_case()) {
    case etcdserverpb::RequestOp::kRequestRange:
      out.request = FromProto(op.request_range());
      break;
    case etcdserverpb::RequestOp::kRequestPut:
      out.request = FromProto(op.request_put());
      break;
    case etcdserverpb::RequestOp::kRequestDeleteRange:
      out.request = FromProto(op.request_delete_range());
      break;
    case etcdserverpb::RequestOp::kRequestTxn:
      out.request = FromProto(op.request_txn());
      break;
    case etcdserverpb::RequestOp::REQUEST_NOT_SET:
      // An empty RequestOp: etcd treats it as a no-op range of nothing;
      // an empty key makes the store reject the txn (key not provided).
      out.request = ::kvstore::RangeRequest{};
      break;
  }
  return out;
}

void ResponseOpToProto(const ::kvstore::ResponseOp& r, etcdserverpb::ResponseOp* out) {
  std::visit(
      [out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, ::kvstore::RangeResponse>) {
          ToProto(v, out->mutable_response_range());
        } else if constexpr (std::is_same_v<T, ::kvstore::PutResponse>) {
          ToProto(v, out->mutable_response_put());
        } else if constexpr (std::is_same_v<T, ::kvstore::DeleteRangeResponse>) {
          ToProto(v, out->mutable_response_delete_range());
        } else {
          ToProto(v, out->mutable_response_txn());
        }
      },
      r.response);
}

bool StartsWith(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

grpc::Status TooLarge(size_t bytes) {
  return {StatusCode::INVALID_ARGUMENT, std::string(::kvstore::kErrRequestTooLarge) + " (" +
                                            std::to_string(bytes) + " bytes, limit " +
                                            std::to_string(kMaxRequestBytes) + ")"};
}

grpc::Status EmptyKey() { return {StatusCode::INVALID_ARGUMENT, ::kvstore::kErrEmptyKey}; }

}  // namespace

::kvstore::RangeRequest FromProto(const etcdserverpb::RangeRequest& r) {
  ::kvstore::RangeRequest out;
  out.key = r.key();
  out.range_end = r.range_end();
  out.limit = r.limit();
  out.revision = r.revision();
  out.sort_order = Enum<::kvstore::RangeRequest::SortOrder>(r.sort_order());
  out.sort_target = Enum<::kvstore::RangeRequest::SortTarget>(r.sort_target());
  out.keys_only = r.keys_only();
  out.count_only = r.count_only();
  out.min_mod_revision = r.min_mod_revision();
  out.max_mod_revision = r.max_mod_revision();
  out.min_create_revision = r.min_create_revision();
  out.max_create_revision = r.max_create_revision();
  return out;
}

::kvstore::PutRequest FromProto(const etcdserverpb::PutRequest& r) {
  ::kvstore::PutRequest out;
  out.key = r.key();
  out.value = r.value();
  out.lease = r.lease();
  out.prev_kv = r.prev_kv();
  out.ignore_value = r.ignore_value();
  out.ignore_lease = r.ignore_lease();
  return out;
}

::kvstore::DeleteRangeRequest FromProto(const etcdserverpb::DeleteRangeRequest& r) {
  ::kvstore::DeleteRangeRequest out;
  out.key = r.key();
  out.range_end = r.range_end();
  out.prev_kv = r.prev_kv();
  return out;
}

::kvstore::TxnRequest FromProto(const etcdserverpb::TxnRequest& r) {
  ::kvstore::TxnRequest out;
  for (const auto& c : r.compare()) out.compare.push_back(CompareFromProto(c));
  for (const auto& op : r.success()) out.success.push_back(RequestOpFromProto(op));
  for (const auto& op : r.failure()) out.failure.push_back(RequestOpFromProto(op));
  return out;
}

std::optional<::kvstore::Op> FromOpProto(const totemkv::kvstore::v1::Op& op) {
  namespace pb = totemkv::kvstore::v1;
  ::kvstore::Op out;
  if (op.op_id().size() == out.op_id.size()) {
    std::copy(op.op_id().begin(), op.op_id().end(), out.op_id.begin());
  }
  switch (op.body_case()) {
    case pb::Op::kPut:
      out.request = FromProto(op.put());
      break;
    case pb::Op::kDeleteRange:
      out.request = FromProto(op.delete_range());
      break;
    case pb::Op::kTxn:
      out.request = FromProto(op.txn());
      break;
    case pb::Op::kCompact:
      out.request = ::kvstore::CompactionRequest{op.compact().revision()};
      break;
    case pb::Op::kLeaseGrant:
      out.request =
          ::kvstore::LeaseGrantRequest{op.lease_grant().id(), op.lease_grant().ttl_seconds()};
      break;
    case pb::Op::kLeaseRevoke:
      out.request = ::kvstore::LeaseRevokeRequest{op.lease_revoke().id()};
      break;
    case pb::Op::kLeaseKeepAlive:
      out.request = ::kvstore::LeaseKeepAliveRequest{op.lease_keep_alive().id()};
      break;
    case pb::Op::kLeaseExpire:
      out.request =
          ::kvstore::LeaseExpireRequest{op.lease_expire().id(), op.lease_expire().generation()};
      break;
    case pb::Op::kBarrier:
    case pb::Op::kMemberState:
    case pb::Op::BODY_NOT_SET:
      return std::nullopt;
  }
  return out;
}

void ToProto(const ::kvstore::KeyValue& kv, mvccpb::KeyValue* out) {
  out->set_key(kv.key);
  out->set_create_revision(kv.create_revision);
  out->set_mod_revision(kv.mod_revision);
  out->set_version(kv.version);
  out->set_value(kv.value);
  out->set_lease(kv.lease);
}

void ToProto(const ::kvstore::RangeResponse& r, etcdserverpb::RangeResponse* out) {
  for (const ::kvstore::KeyValue& kv : r.kvs) ToProto(kv, out->add_kvs());
  out->set_more(r.more);
  out->set_count(r.count);
}

void ToProto(const ::kvstore::PutResponse& r, etcdserverpb::PutResponse* out) {
  if (r.prev_kv) ToProto(*r.prev_kv, out->mutable_prev_kv());
}

void ToProto(const ::kvstore::DeleteRangeResponse& r, etcdserverpb::DeleteRangeResponse* out) {
  out->set_deleted(r.deleted);
  for (const ::kvstore::KeyValue& kv : r.prev_kvs) ToProto(kv, out->add_prev_kvs());
}

void ToProto(const ::kvstore::TxnResponse& r, etcdserverpb::TxnResponse* out) {
  out->set_succeeded(r.succeeded);
  for (const ::kvstore::ResponseOp& op : r.responses) ResponseOpToProto(op, out->add_responses());
}

grpc::Status ToGrpcStatus(const totem::Status& s) {
  using totem::StatusCode;
  if (s.ok()) return grpc::Status::OK;
  const std::string& m = s.message();
  if (StartsWith(m, ::kvstore::kErrCompacted) || StartsWith(m, ::kvstore::kErrFutureRev)) {
    return {grpc::StatusCode::OUT_OF_RANGE, "etcdserver: " + m};
  }
  if (StartsWith(m, ::kvstore::kErrLeaseNotFound)) return {grpc::StatusCode::NOT_FOUND, m};
  if (StartsWith(m, ::kvstore::kErrLeaseExists)) return {grpc::StatusCode::FAILED_PRECONDITION, m};
  if (StartsWith(m, ::kvstore::kErrKeyNotFound)) return {grpc::StatusCode::INVALID_ARGUMENT, m};
  switch (s.code()) {
    case StatusCode::kOk:
      return grpc::Status::OK;
    case StatusCode::kInvalidArgument:
    case StatusCode::kResourceExhausted:
      return {grpc::StatusCode::INVALID_ARGUMENT, m};
    case StatusCode::kFailedPrecondition:
      return {grpc::StatusCode::FAILED_PRECONDITION, m};
    case StatusCode::kWouldBlock:
    case StatusCode::kUnavailable:
      return {grpc::StatusCode::UNAVAILABLE, m};
    case StatusCode::kIoError:
    case StatusCode::kInternal:
      break;
  }
  return {grpc::StatusCode::INTERNAL, m};
}

grpc::Status ValidatePut(const etcdserverpb::PutRequest& r) {
  if (r.key().empty()) return EmptyKey();
  if (r.ByteSizeLong() > kMaxRequestBytes) return TooLarge(r.ByteSizeLong());
  return grpc::Status::OK;
}

grpc::Status ValidateRange(const etcdserverpb::RangeRequest& r) {
  if (r.key().empty()) return EmptyKey();
  if (r.ByteSizeLong() > kMaxRequestBytes) return TooLarge(r.ByteSizeLong());
  return grpc::Status::OK;
}

grpc::Status ValidateDeleteRange(const etcdserverpb::DeleteRangeRequest& r) {
  if (r.key().empty()) return EmptyKey();
  if (r.ByteSizeLong() > kMaxRequestBytes) return TooLarge(r.ByteSizeLong());
  return grpc::Status::OK;
}

grpc::Status ValidateTxn(const etcdserverpb::TxnRequest& r) {
  // Shape (empty keys, too many ops, duplicate keys) is checked by the
  // store at apply time with the same result on every replica; only the
  // size is checked here, since it bounds what we multicast.
  if (r.ByteSizeLong() > kMaxRequestBytes) return TooLarge(r.ByteSizeLong());
  return grpc::Status::OK;
}

}  // namespace totemkv::server

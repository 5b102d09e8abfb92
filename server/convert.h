// Conversions between the etcd v3 wire messages (etcdserverpb / mvccpb, and
// our replicated Op envelope) and the kvstore's plain C++ types, plus the
// mapping of store errors to etcd-compatible gRPC statuses. Pure functions:
// the apply path calls FromOpProto on every node, so it must be
// deterministic (it is: field copies only).
#ifndef TOTEMKV_SERVER_CONVERT_H_
#define TOTEMKV_SERVER_CONVERT_H_

#include <grpcpp/support/status.h>

#include <optional>

#include "etcd/kv.pb.h"
#include "etcd/rpc.pb.h"
#include "kvstore/ops.pb.h"
#include "kvstore/types.h"

namespace totemkv::server {

// etcd's request size limit (1.5 MiB); larger requests get
// INVALID_ARGUMENT "etcdserver: request is too large" and are not proposed.
inline constexpr size_t kMaxRequestBytes = 1536 * 1024;

::kvstore::RangeRequest FromProto(const etcdserverpb::RangeRequest& r);
::kvstore::PutRequest FromProto(const etcdserverpb::PutRequest& r);
::kvstore::DeleteRangeRequest FromProto(const etcdserverpb::DeleteRangeRequest& r);
::kvstore::TxnRequest FromProto(const etcdserverpb::TxnRequest& r);

// The store op an envelope carries; nullopt for a Barrier, a MemberState or an envelope
// without a body (both change nothing). op_id is copied when it is 16
// bytes, else left zero (no dedup).
std::optional<::kvstore::Op> FromOpProto(const totemkv::kvstore::v1::Op& op);

void ToProto(const ::kvstore::KeyValue& kv, mvccpb::KeyValue* out);
void ToProto(const ::kvstore::RangeResponse& r, etcdserverpb::RangeResponse* out);
void ToProto(const ::kvstore::PutResponse& r, etcdserverpb::PutResponse* out);
void ToProto(const ::kvstore::DeleteRangeResponse& r, etcdserverpb::DeleteRangeResponse* out);
void ToProto(const ::kvstore::TxnResponse& r, etcdserverpb::TxnResponse* out);

// A store (or totem) status as etcd would report it: compacted / future
// revision -> OUT_OF_RANGE "etcdserver: mvcc: ...", lease not found ->
// NOT_FOUND, limits and malformed requests -> INVALID_ARGUMENT, and so on.
grpc::Status ToGrpcStatus(const totem::Status& status);

// Checks done at the API boundary before proposing (cheap, local, and the
// same ones etcd does there): empty keys, request size, txn shape.
grpc::Status ValidatePut(const etcdserverpb::PutRequest& r);
grpc::Status ValidateRange(const etcdserverpb::RangeRequest& r);
grpc::Status ValidateDeleteRange(const etcdserverpb::DeleteRangeRequest& r);
grpc::Status ValidateTxn(const etcdserverpb::TxnRequest& r);

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_CONVERT_H_

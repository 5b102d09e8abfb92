// Fuzz target for the gRPC request validation of the KV service
// (server/convert.h): the first byte picks the request type (Range, Put,
// DeleteRange, Txn), the rest is parsed as that etcd request, as gRPC would
// hand it to the service. Validate* must answer every request; a request it
// accepts is converted with FromProto, and a Range is served by a real
// MvccStore (fuzz_store.h) as a serializable read would be (writes are
// covered by fuzz_op_proto). Errors must be statuses, never crashes.
#include <cstdint>

#include "convert.h"
#include "etcd/rpc.pb.h"
#include "fuzz_store.h"

namespace {

template <typename Request, typename Validate>
bool ParseAndValidate(const uint8_t* data, size_t size, Request* request, Validate validate) {
  if (!request->ParseFromArray(data, static_cast<int>(size))) return false;
  grpc::Status status = validate(*request);
  // A rejection is INVALID_ARGUMENT with a message, as etcd answers.
  if (!status.ok() && (status.error_code() != grpc::StatusCode::INVALID_ARGUMENT ||
                       status.error_message().empty())) {
    std::abort();
  }
  return status.ok();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  namespace srv = totemkv::server;
  const uint8_t kind = data[0] % 4;
  ++data;
  --size;
  switch (kind) {
    case 0: {
      etcdserverpb::RangeRequest r;
      if (ParseAndValidate(data, size, &r, srv::ValidateRange)) {
        auto result = totemkv::fuzz::FuzzStore::Get().store().Range(srv::FromProto(r));
        if (result.ok()) {
          etcdserverpb::RangeResponse response;
          srv::ToProto(result.value(), &response);
        } else {
          (void)srv::ToGrpcStatus(result.status());
        }
      }
      break;
    }
    case 1: {
      etcdserverpb::PutRequest r;
      if (ParseAndValidate(data, size, &r, srv::ValidatePut)) (void)srv::FromProto(r);
      break;
    }
    case 2: {
      etcdserverpb::DeleteRangeRequest r;
      if (ParseAndValidate(data, size, &r, srv::ValidateDeleteRange)) (void)srv::FromProto(r);
      break;
    }
    default: {
      etcdserverpb::TxnRequest r;
      if (ParseAndValidate(data, size, &r, srv::ValidateTxn)) (void)srv::FromProto(r);
      break;
    }
  }
  return 0;
}

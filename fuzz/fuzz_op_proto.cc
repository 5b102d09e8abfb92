// Fuzz target for the op decoder of the apply path: the bytes a node
// multicasts to the "kv" group are parsed as a totemkv.kvstore.v1.OpBatch
// (proto/kvstore/ops.proto), every op converted by the server's FromOpProto
// (server/convert.h) and the batch applied to a real MvccStore (fuzz_store.h)
// as every replica would. The store must answer any op, however odd its
// fields (unknown enum values, huge limits, negative revisions, nested
// txns, duplicate keys), with a result or a precise error: no crash, leak
// or hang, and never an IoError (that would stop the replica).
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#include "convert.h"
#include "fuzz_store.h"
#include "kvstore/ops.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  totemkv::kvstore::v1::OpBatch batch;
  if (!batch.ParseFromArray(data, static_cast<int>(size))) return 0;
  std::vector<::kvstore::Op> ops;
  for (const auto& op : batch.ops()) {
    std::optional<::kvstore::Op> converted = totemkv::server::FromOpProto(op);
    if (converted) ops.push_back(std::move(*converted));
  }
  if (ops.empty()) return 0;
  auto& fs = totemkv::fuzz::FuzzStore::Get();
  ::kvstore::AppliedPosition position{"fuzz", fs.NextSeq()};
  auto results = fs.store().ApplyBatch(ops, position);
  if (!results.ok()) {
    std::fprintf(stderr, "fuzz_op_proto: ApplyBatch failed: %s\n",
                 results.status().message().c_str());
    std::abort();
  }
  if (results.value().size() != ops.size()) std::abort();
  return 0;
}

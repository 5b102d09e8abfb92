// Fuzz target for the replication engine's message decoder and state
// machine (kvstore/include/kvstore/replication.h): Engine::Step on node 1 of
// a 3-node bootstrap cluster, over the in-memory storage of the simulator
// (kvstore/sim/in_memory_storage.h), with configurations and deliveries read
// from the input (format: fuzz/repl_input.h). Payloads are anything a
// member of the ring could multicast: ops, state-exchange, transfer,
// snapshot, ready and applied messages, or garbage. The engine must count
// garbage as malformed and never crash, leak or loop; consecutive
// deliveries go in as one batch (as the server feeds them).
#include <cstdint>
#include <vector>

#include "kvstore/replication.h"
#include "kvstore/sim/in_memory_storage.h"
#include "repl_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kvstore::repl::Input;
  std::vector<Input> inputs = totemkv::fuzz::DecodeReplInputs(data, size);

  kvstore::sim::InMemoryStorage storage(/*log_retention=*/4, /*snapshot_chunk_bytes=*/64);
  kvstore::repl::EngineOptions options;
  options.self = 1;
  options.bootstrap_members = {1, 2, 3};
  options.transfer_chunk_bytes = 64;
  options.transfer_window = 2;
  options.max_buffered_ops = 64;
  kvstore::repl::Engine engine(options, &storage);

  kvstore::repl::Effects effects;
  size_t begin = 0;
  for (size_t i = 0; i <= inputs.size(); ++i) {
    bool flush =
        i == inputs.size() || inputs[i].kind == Input::Kind::kConfiguration || i - begin >= 8;
    if (!flush) continue;
    if (i > begin) {
      std::span<const Input> batch(inputs.data() + begin, i - begin);
      if (!engine.Step(batch, &effects).ok()) return 0;  // storage refused: replica stops
    }
    begin = i;
    if (i < inputs.size() && inputs[i].kind == Input::Kind::kConfiguration) {
      if (!engine.Step(inputs[i], &effects).ok()) return 0;
      begin = i + 1;
    }
  }
  return 0;
}

// Helpers for tests that run totemkvd processes in network namespaces
// (tests/integration/net_lab.h) and reach them over Unix sockets: gRPC
// channels that reconnect quickly to a restarted node, and the convergence
// checks the fault test and the compose topology test share (one ring of
// every node, equal store checksums, log tails for failure messages).
#ifndef TOTEMKV_TESTS_SERVER_NETNS_CLUSTER_H_
#define TOTEMKV_TESTS_SERVER_NETNS_CLUSTER_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "admin/admin.grpc.pb.h"

namespace totemkv::testing {

// A channel to a totemkvd listening on unix://`path`. A restarted node must
// be reachable again within moments, not after gRPC's default reconnect
// backoff (up to two minutes).
inline std::shared_ptr<grpc::Channel> UnixSocketChannel(const std::string& path) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  return grpc::CreateCustomChannel("unix:" + path, grpc::InsecureChannelCredentials(), args);
}

// The last `lines` lines of `text`.
inline std::string Tail(const std::string& text, size_t lines) {
  size_t pos = text.size();
  for (size_t n = 0; n <= lines && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

// A node under test: its name (for messages) and a channel to it.
struct NodeChannel {
  std::string name;
  std::shared_ptr<grpc::Channel> channel;
};

// Every node answers Admin.GetRing with one and the same regular
// configuration of all of them (nodes.size() members), not in transition.
// `why` says who did not.
inline bool RingOfAll(const std::vector<NodeChannel>& nodes, std::string* why) {
  std::optional<std::pair<uint32_t, uint64_t>> ring;
  for (const NodeChannel& n : nodes) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    totemkv::admin::v1::GetRingResponse resp;
    const grpc::Status s = totemkv::admin::v1::Admin::NewStub(n.channel)->GetRing(&ctx, {}, &resp);
    if (!s.ok()) {
      *why = n.name + ": GetRing: " + s.error_message();
      return false;
    }
    if (resp.members_size() != static_cast<int>(nodes.size()) || resp.in_transition()) {
      *why = n.name + ": ring has " + std::to_string(resp.members_size()) + " members" +
             (resp.in_transition() ? ", in transition" : "");
      return false;
    }
    const std::pair<uint32_t, uint64_t> id{resp.ring_id().representative(), resp.ring_id().seq()};
    if (ring && *ring != id) {
      *why = "nodes are on different rings";
      return false;
    }
    ring = id;
  }
  return true;
}

inline std::string DescribeChecksum(const totemkv::admin::v1::GetStoreChecksumResponse& r) {
  char buf[200];
  std::snprintf(buf, sizeof(buf),
                "checksum=%016" PRIx64 " revision=%" PRId64 " compact=%" PRId64
                " applied_seq=%" PRIu64 " applied_writes=%" PRIu64,
                r.checksum(), r.revision(), r.compact_revision(), r.applied_seq(),
                r.applied_writes());
  return buf;
}

// One round of Admin.GetStoreChecksum on every node: true when all answer
// with the same checksum. `sums` gets the answers, `table` one line per
// node (its answer or its error).
inline bool StoreChecksumsEqual(const std::vector<NodeChannel>& nodes,
                                std::vector<totemkv::admin::v1::GetStoreChecksumResponse>* sums,
                                std::string* table) {
  sums->assign(nodes.size(), {});
  table->clear();
  bool same = true;
  for (size_t i = 0; i < nodes.size(); ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    const grpc::Status s = totemkv::admin::v1::Admin::NewStub(nodes[i].channel)
                               ->GetStoreChecksum(&ctx, {}, &(*sums)[i]);
    same = same && s.ok() && (*sums)[i].checksum() == (*sums)[0].checksum();
    *table += "  " + nodes[i].name + ": " +
              (s.ok() ? DescribeChecksum((*sums)[i]) : "error: " + s.error_message()) + "\n";
  }
  return same;
}

}  // namespace totemkv::testing

#endif  // TOTEMKV_TESTS_SERVER_NETNS_CLUSTER_H_

// Fuzz target for the multiple-ring layer (totem/core/multi_ring.h) and the
// view-table wire form of the global configuration
// (totem/core/global_view.h). Ring deliveries come from any member of a
// local ring (a buggy or restarted peer, another ring's gateway), so the
// envelope, Sync, Guarantee Vector, topology and Resync decoders must reject
// any byte string, and the core must survive any sequence of deliveries,
// configuration changes and timers without crashing, asserting, delivering
// out of order or growing without bound.
//
// Input:
//  1. The whole input is read as a view table and as a ring report; one
//     that decodes is re-encoded and must give the same bytes, and a table
//     is merged into an empty one and the global configuration of node 5
//     computed from it.
//  2. The input is also read as records (fuzz/mring_input.h) fed to the
//     MultiRing core of node 5, a gateway on rings 1 and 2. Node 5's own
//     submissions are kept (at most 256 per ring) so that loopback records
//     can deliver them back, as its ring would. Delivered messages must come
//     in strictly increasing key order. Seeds (fuzz/corpus/multi_ring/) hold
//     what node 5 sees of a 4-ring-member network running, so the fuzzer
//     starts from synced rings and real envelopes.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <span>
#include <vector>

#include "mring_input.h"
#include "totem/core/global_view.h"
#include "totem/core/multi_ring.h"
#include "totem/core/wire.h"

namespace {

using totem::core::MessageKey;
using totem::core::RingNumber;

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Submitted {
  std::vector<uint8_t> bytes;
  totem::Guarantee guarantee;
};

class FuzzOutput final : public totem::core::MultiRingOutput {
 public:
  void SubmitToRing(RingNumber ring, std::span<const uint8_t> bytes,
                    totem::Guarantee guarantee) override {
    Check(ring == 1 || ring == 2);
    auto& q = pending[ring - 1];
    q.push_back({{bytes.begin(), bytes.end()}, guarantee});
    if (q.size() > 256) q.pop_front();
  }
  void Deliver(const totem::core::MultiDelivery& d) override {
    for (uint8_t b : d.payload) sum_ += b;  // ASan: a dangling or short span
    Check(!have_last_ || last_ < d.key);
    have_last_ = true;
    last_ = d.key;
  }
  void DeliverTopology(const totem::core::TopologyEvent& e) override { sum_ += e.reachable.size(); }
  void DeliverConfiguration(const totem::core::GlobalConfiguration& c) override {
    Check(std::is_sorted(c.members.begin(), c.members.end()));
    Check(std::binary_search(c.members.begin(), c.members.end(), totemkv::fuzz::kMringSelf));
  }
  void SetTimer(uint64_t) override {}

  std::deque<Submitted> pending[2];

 private:
  uint64_t sum_ = 0;
  bool have_last_ = false;
  MessageKey last_;
};

void FuzzViewDecoding(std::span<const uint8_t> data) {
  const std::vector<RingNumber> rings = {1, 2, 3};
  {
    totem::core::Reader r(data);
    totem::core::ViewTable table;
    if (totem::core::DecodeViewTable(r, rings, &table)) {
      std::vector<uint8_t> again;
      totem::core::Writer w(again);
      totem::core::EncodeViewTable(table, w);
      Check(std::equal(again.begin(), again.end(), data.begin(), data.begin() + r.position()));
      totem::core::ViewTable merged;
      totem::core::MergeViewTable(table, merged);
      totem::core::MergeViewTable(table, merged);
      auto cfg = totemkv::fuzz::MringConfig(totemkv::fuzz::kMringSelf, {1, 2});
      totem::core::GlobalConfiguration gc;
      totem::core::ViewComponents used;
      if (totem::core::ComputeGlobalConfiguration(merged, cfg.rings, cfg.node_id, cfg.local_rings,
                                                  cfg.links, MessageKey{}, &gc, &used)) {
        Check(std::is_sorted(gc.members.begin(), gc.members.end()));
      }
    }
  }
  {
    totem::core::Reader r(data);
    totem::ConfigurationId id;
    std::vector<totem::NodeId> members;
    if (totem::core::DecodeRingReport(r, &id, &members)) {
      std::vector<uint8_t> again;
      totem::core::Writer w(again);
      totem::core::EncodeRingReport(id, members, w);
      Check(std::equal(again.begin(), again.end(), data.begin(), data.begin() + r.position()));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace totemkv::fuzz;  // NOLINT(build/namespaces): the format's names
  FuzzViewDecoding({data, size});

  totem::core::MultiRing core(MringConfig(kMringSelf, {1, 2}));
  FuzzOutput out;
  uint64_t now = 1000000;
  core.Start(now, out);
  totem::ConfigurationId config[2];
  size_t pos = 0;
  auto need = [&](size_t n) { return size - pos >= n; };
  while (pos < size) {
    const uint8_t tag = data[pos++] % 5;
    switch (tag) {
      case kMringDelivery: {
        if (!need(3)) return 0;
        const uint8_t flags = data[pos];
        size_t len = data[pos + 1] | (static_cast<size_t>(data[pos + 2]) << 8);
        pos += 3;
        len = std::min(len, size - pos);
        const int idx = flags & 1;
        totem::Delivery d;
        d.config_id = config[idx];
        d.config_kind = (flags & 2) ? totem::ConfigurationKind::kTransitional
                                    : totem::ConfigurationKind::kRegular;
        d.guarantee = (flags & 4) ? totem::Guarantee::kSafe : totem::Guarantee::kAgreed;
        d.sender = static_cast<totem::NodeId>(((flags >> 3) & 7) + 1);
        d.payload = {data + pos, len};
        pos += len;
        core.HandleRingDelivery(static_cast<RingNumber>(idx + 1), d, now, out);
        break;
      }
      case kMringConfiguration: {
        if (!need(3)) return 0;
        const uint8_t flags = data[pos];
        const uint8_t seq = data[pos + 1];
        const uint8_t mask = static_cast<uint8_t>(data[pos + 2] | (1u << (kMringSelf - 1)));
        pos += 3;
        const int idx = flags & 1;
        totem::ConfigurationEvent e;
        e.kind = (flags & 2) ? totem::ConfigurationKind::kTransitional
                             : totem::ConfigurationKind::kRegular;
        for (int i = 0; i < 8; ++i) {
          if ((mask >> i) & 1) e.members.push_back(static_cast<totem::NodeId>(i + 1));
        }
        e.id = {e.members.front(), seq};
        if (e.kind == totem::ConfigurationKind::kRegular) config[idx] = e.id;
        core.HandleRingConfiguration(static_cast<RingNumber>(idx + 1), e, now, out);
        break;
      }
      case kMringTimer:
        if (!need(1)) return 0;
        now += static_cast<uint64_t>(data[pos++]) * 1000;
        core.HandleTimer(now, out);
        break;
      case kMringLoopback: {
        if (!need(1)) return 0;
        const uint8_t flags = data[pos++];
        const int idx = flags & 1;
        auto& q = out.pending[idx];
        size_t n = (flags & 2) ? q.size() : std::min<size_t>(1, q.size());
        while (n-- > 0 && !q.empty()) {
          Submitted s = std::move(q.front());
          q.pop_front();
          totem::Delivery d;
          d.config_id = config[idx];
          d.guarantee = s.guarantee;
          d.sender = kMringSelf;
          d.payload = s.bytes;
          core.HandleRingDelivery(static_cast<RingNumber>(idx + 1), d, now, out);
        }
        break;
      }
      case kMringSubmit: {
        if (!need(2)) return 0;
        const uint8_t dest = data[pos];
        size_t len = std::min<size_t>(data[pos + 1], size - pos - 2);
        pos += 2;
        std::vector<RingNumber> destinations;
        for (RingNumber r = 1; r <= 3; ++r) {
          if ((dest >> (r - 1)) & 1) destinations.push_back(r);
        }
        const auto g = (dest & 0x80) ? totem::Guarantee::kSafe : totem::Guarantee::kAgreed;
        Check(core.Submit({data + pos, len}, g, destinations, now, out).ok());
        pos += len;
        break;
      }
      default:
        break;
    }
  }
  Check(core.queued() <= 2 * size + 64);
  return 0;
}

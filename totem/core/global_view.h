// The global configuration of the multiple-ring layer (multi_ring.h,
// "Global configurations"): the view table of ring membership reports, how
// a GlobalConfiguration and its id are computed from it, and the wire form
// of reports and tables inside the multi-ring envelope. Pure functions; the
// MultiRing core decides when tables change and configurations are
// delivered. Not in the paper (its multi-ring protocol has topology changes
// only); it gives the store one extended-virtual-synchrony view across rings.
#ifndef TOTEM_CORE_GLOBAL_VIEW_H_
#define TOTEM_CORE_GLOBAL_VIEW_H_

#include <cstdint>
#include <map>
#include <vector>

#include "totem/core/multi_ring.h"
#include "totem/core/wire.h"

namespace totem::core {

// Bounds on what a report or a table may carry (larger ones are malformed).
inline constexpr size_t kMaxReportMembers = 1024;
inline constexpr size_t kMaxTableEntries = 256;

// Applies `report` of `ring` as a delivered report: ignored if the table
// has it or a newer report sharing a member; else it replaces the entries
// sharing a member with it. Newer: a higher single-ring configuration seq
// (then key); never the key alone, since a ring whose members all
// restarted stamps low timestamps again. True if the table changed.
bool ApplyRingReport(RingNumber ring, const RingReport& report, ViewTable& table);
// Applies every report of `from`, oldest first. True if `into` changed.
bool MergeViewTable(const ViewTable& from, ViewTable& into);
// True if `table` has `report` or a newer report of `ring` sharing a member.
bool Covers(const ViewTable& table, RingNumber ring, const RingReport& report);

// The (ring, configuration id) of each component a configuration uses.
using ViewComponents = std::vector<std::pair<RingNumber, ConfigurationId>>;

// The global configuration of processor `self` on `local_rings` at `key`:
// BFS from the components of its rings that hold it, over the configured
// `links`, an edge live when its gateway is a member of a component of both
// rings. False (and `out` untouched) if a local ring has no component
// holding `self`, or a ring behind an edge whose gateway the near component
// lists has no entry: the processor does not know enough yet. `rings` is
// every ring of the network (its sorted position numbers the source ring in
// the id).
bool ComputeGlobalConfiguration(const ViewTable& table, const std::vector<RingNumber>& rings,
                                NodeId self, const std::vector<RingNumber>& local_rings,
                                const std::vector<GatewayLink>& links, const MessageKey& key,
                                GlobalConfiguration* out, ViewComponents* used);

// 16-bit digest of the components a configuration uses and their members.
uint16_t ViewDigest(const ViewComponents& used, const std::vector<std::vector<NodeId>>& members);

// A ring's report body: configuration rep u32 | seq u64 | count u16 | count
// x member u32 (ascending).
void EncodeRingReport(const ConfigurationId& config, const std::vector<NodeId>& members, Writer& w);
// False if truncated, empty, not strictly ascending, holding node 0 or longer
// than kMaxReportMembers.
bool DecodeRingReport(Reader& r, ConfigurationId* config, std::vector<NodeId>* members);

// A view table: count u16 | count x (ring u32 | key: timestamp u64, source
// ring u32, origin u32, origin seq u64 | report body), (ring, key) ascending.
void EncodeViewTable(const ViewTable& table, Writer& w);
// False if malformed: a ring not in `rings`, entries not ascending, an
// entry's key not from its own ring, a bad report, more than kMaxTableEntries
// entries, or two components of one ring sharing a member.
bool DecodeViewTable(Reader& r, const std::vector<RingNumber>& rings, ViewTable* table);

}  // namespace totem::core

#endif  // TOTEM_CORE_GLOBAL_VIEW_H_

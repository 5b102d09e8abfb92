// Global configurations as extended-virtual-synchrony events: the multiple
// ring layer (multi_ring.h) delivers one GlobalConfiguration per view change
// of the whole ring network, in the total order; consumers written for one
// ring (the process group layer, the store's replication engine) expect the
// EVS pair of a transitional configuration (the members that move on
// together) followed by the new regular configuration. This is that mapping,
// as a pure function.
#ifndef TOTEM_CORE_GLOBAL_EVS_H_
#define TOTEM_CORE_GLOBAL_EVS_H_

#include <vector>

#include "totem/core/multi_ring.h"
#include "totem/types.h"

namespace totem::core {

// The EVS events for global configuration `g` following `previous` (the last
// regular event returned; nullptr before the first one):
//  - nothing if `previous` has g's id (a repeated delivery);
//  - otherwise a transitional event (previous members that are still in g,
//    left = the others; omitted before the first configuration) and a
//    regular one (g's members sorted and deduplicated; joined/left relative
//    to previous). Both carry g.id: the multiple-ring layer has no separate
//    transitional id, and a transitional event only marks the boundary.
std::vector<ConfigurationEvent> GlobalEvsEvents(const ConfigurationEvent* previous,
                                                const GlobalConfiguration& g);

}  // namespace totem::core

#endif  // TOTEM_CORE_GLOBAL_EVS_H_

// The Totem multiple-ring protocol (Moser et al., CACM 1996, "The Totem
// Multiple-Ring Protocol"; Agarwal et al., TOCS 1998) as a pure state
// machine: the ordering and topology layer of ONE processor, above the
// single-ring cores of the rings it is on (an ordinary processor: one ring; a
// gateway: two or more). The driver feeds it every delivery and
// configuration event of its SingleRing cores and submits what it asks for;
// no sockets, clocks, threads or randomness inside.
//
// Messages. Every message carries a Lamport timestamp, its source ring (a
// configured ring number that stays the same across that ring's membership
// changes) and a source id (origin node, origin seq; the driver passes an
// incarnation so ids stay unique across restarts). Each message is totally
// ordered by its key (timestamp, source ring, origin node, origin seq).
//
// Timestamps per source ring. The paper keeps the timestamp on the token so
// that a ring's messages carry increasing timestamps in sequence order. Our
// SingleRing has no such field (and its wire format stays as it is), so the
// members of the source ring turn the origin's Lamport timestamp into an
// effective one as they deliver it from the ring: eff = max(ts, prev + 1),
// where prev is the previous effective timestamp of that ring. At each new
// regular configuration of a ring every member multicasts a Sync carrying
// its Lamport clock; the ring's own messages are held until every member's
// Sync is delivered, and prev restarts from the highest clock (if the
// configuration ends first, the held messages are dropped, counted as
// unsynced_dropped: the members moving on together drop the same ones, and
// those of other components never stamped them either). The effective
// timestamp then travels with every forwarded copy, unchanged. A ring's own
// messages that its single ring delivers in a transitional configuration
// (past a gap, so with a prefix that differs between the components) are
// dropped by the multi-ring layer: their effective timestamp could not be
// agreed. Regular-configuration deliveries are gap-free prefixes of one
// sequence, so every member stamps them alike.
//
// Forwarding. A gateway forwards a message the first time it accepts it, in
// acceptance order, to each of its other rings for which it is the parent
// edge in the breadth-first spanning tree of the live ring graph rooted at
// the message's source ring (ties by ring number, then gateway id), so in
// any topology (chain, tree, cycle) each ring gets each message once. As a
// safety net a processor drops exact copies of a message it accepted as
// duplicates (a gateway also sees its own forwarded copy come back; a
// redundant gateway gets each message by both of its rings). The filter
// keeps, per (source ring, origin node), the origin seqs accepted above a
// floor; the floor moves up to ids whose key this processor has delivered
// past (so an unseen id at or below it is late anyway: one origin's
// messages are stamped in seq order on their source ring), or past a cap
// of 4096 ids (counted as dedup_overflow). It does not assume one path:
// copies of one origin's messages may come out of origin order by two
// paths (a gateway that (re)joined ring 2 gets message k+1 directly on
// ring 2 and then k, which ring 2 ordered before it joined, forwarded over
// ring 1). Such a copy is accepted below its source ring's guarantee
// (counted as reordered_accepted) as long as its key is above the last
// delivered one, and dropped as late (counted) if not. Per path a ring's
// messages come in order (each gateway forwards in its acceptance order,
// as in the paper); across paths they need not, and the direct message
// raised the source's guarantee past the missing ones. So a gateway that
// joins a configuration of one of its rings r with members it was not
// with (or its first one) holds back, once the Sync round ends, every key
// above the highest timestamp of r's messages in its other rings' streams
// until that reaches the round's sync floor (every message r ordered
// before the join has a timestamp at or below it, everything after is
// above): the copies of what r ordered before the join come by the other
// rings in r's order (its own forwards of r's new messages come back that
// way too). If the other streams carry nothing of r for 8 guarantee
// intervals (no live path), the hold ends (counted as
// join_holds_expired); what comes later below the last delivered key is
// late. A copy forwarded before this processor joined the other ring is
// never received here: the limits below.
//
// Gateway failover. Every gateway retains what it accepted until every
// reachable ring's Guarantee Vector reported it. When the tree changes so
// that a gateway now owns an edge toward one of its rings (a redundant
// gateway between the same rings, or the other way round a cycle), it
// re-forwards the retained messages above what that ring reported: the
// ring's members drop what they already have as duplicates and take the
// rest, which the failed gateway had accepted but not forwarded.
//
// Delivery. Accepted messages wait in receive queues (one per source ring,
// kept as one map by key). The lowest-keyed message is delivered once, for
// every reachable source ring with an empty queue, the ring's guarantee (no
// later message from it can have a lower key) is past it. A received message
// from ring r raises r's guarantee to its key; Guarantee Vector messages,
// which gateways multicast on each of their rings every
// guarantee_interval_us, do so when a ring is idle. Safe delivery across
// rings: a Guarantee Vector is submitted as a safe single-ring message and
// reports, per source ring s, the highest timestamp from s seen in its ring's
// stream, so once it is delivered every member of that ring has those
// messages. A safe message from s with timestamp t is delivered when, for
// every reachable ring r, some Guarantee Vector of r reported >= t for s (or
// this processor got it as a safe delivery on r itself).
//
// Topology. The ring graph (rings; gateways joining pairs of rings) is
// configured; an edge is live while its gateway is a member of both rings,
// as the latest report from each ring says. Reports are ordered messages of
// the ring they describe: at each new regular configuration of a ring its
// lowest member multicasts RingGateways (the configured gateways now in
// it), a gateway regular on two of its rings multicasts Bridge on both, and
// every Guarantee Vector carries the same report for its ring, so views
// that diverged (a processor that restarted, a report that arrived while
// cut off) converge within a guarantee interval. A report is applied when
// received (in its ring's stream, everything that could still come from
// the rings it cuts off was received before it); the topology event is
// delivered at the message's key, so every processor sees RingGateways and
// Bridge at the same logical point. Rings cut off are no longer waited for
// (what still comes from them is delivered in key order if it is not late);
// rings that come back are waited for again from this processor's last
// delivered key on. Safety never depends on the topology view: a message
// whose key is not above the last delivered one is dropped as late
// (counted), and one that is, but below its source ring's guarantee (it
// came by another path, see Forwarding), is queued without lowering it;
// the view only decides what is waited for (liveness) and where gateways
// forward.
//
// Filtering by destination. A data message may name destination rings
// (none: every ring). It is delivered to the application only by the
// processors with a local ring among them; everywhere else it is skipped at
// its place in the order (counted as filtered_skipped), so receive queues,
// guarantees, safe delivery and duplicate detection work exactly as for any
// message. A gateway forwards the full payload on a tree edge only if the
// subtree of the source ring's tree behind that edge holds a ring that needs
// it: a destination, or a ring with a gateway to a destination other than
// the source ring (that gateway may get its first copy from this side, as in
// a cycle). Otherwise it forwards a stub: the same envelope with the
// destinations and no payload. A processor on a destination ring that
// accepted a stub first takes the payload from a later full copy while the
// message is still queued; if none came in time it skips the message
// (counted as stub_at_destination; only possible when redundant gateways or
// a topology change gave it the stub first). Retained copies keep what the
// gateway accepted, payload included, and a take-over re-forwards them as
// kept (unfiltered).
//
// Global configurations. Each ring's membership report (RingGateways, and
// the copy every Guarantee Vector carries for its ring) also carries the
// ring's member list and its single-ring configuration id. Every processor
// keeps a view table: per ring, the latest report DELIVERED in the total
// order (receipt only moves the topology above); a report replaces the
// older ones (lower single-ring configuration seq: keys do not order
// reports once all of a ring's members restarted) whose members it shares,
// so a partitioned ring keeps one entry per component. The global
// configuration is computed from the table alone: the components reachable
// from the ones this processor is in, over edges whose gateway both
// components list, and the union of their members. At the key of each
// delivered RingGateways report that changes the reachable rings, their
// members or their configuration ids (a re-formed ring is a new EVS
// configuration even with the same members), the layer delivers
// DeliverConfiguration after DeliverTopology, and every later MultiDelivery
// carries its id. The id:
// rep = the lowest member; seq = timestamp << 24 | (position of the key's
// source ring among the sorted rings, capped at 255) << 16 | a 16-bit
// digest of the reachable components (members and configuration ids) and
// of the key's origin and origin seq. So two processors whose tables differ
// at the same key, or two configurations of one view at different keys,
// (almost surely) get different ids, and seq increases along the key order
// (the ring position orders two configurations of one timestamp from
// different rings) with one exception: two parts of a partitioned ring may
// stamp the same timestamp, and a processor that delivers configurations
// at both keys sees their seqs in digest order (concurrent configurations;
// rare: the simulator counts them as seq_ties).
//
// Resync. A processor that started (or restarted) has no entries for other
// rings, and one that dropped a report as late (see limits) has an old one.
// It delivers no configuration while a ring it may reach has no entry.
// Gateways' Guarantee Vectors carry the gateway's whole view table and its
// last delivered key; a processor that finds there an entry for a ring it
// lacks, or a newer entry whose key it has already passed (so it will never
// deliver that report), keeps it aside and multicasts an ordered Resync (a
// kTopology message carrying its table merged with what it adopted; one at
// a time, again after 16 Guarantee Vectors if it was lost). The lowest
// member of a gateway's ring does the same when the gateway's table lacks
// an entry the member has and the gateway has passed. At the Resync's key
// every processor merges the carried table into its own (newer reports
// win, as above) and delivers a new configuration (also with unchanged members), so views
// line up at one key. Adopted entries never take effect before that key:
// an adopted entry has a key below the Resync's (the gateway delivered it
// before multicasting the vector), so every processor that delivers the
// Resync has passed it. It can be OLDER than what others delivered in
// between (a lagging gateway, a report before the restart): then views
// differ at the Resync's key (different ids, never the same id with
// different members), and the newer entry, which this processor has then
// passed, triggers the next Resync. Tables only grow newer, so after faults
// stop the views converge. Equal tables can still leave configurations
// apart: a processor that was not waiting for a ring drops that ring's
// Resync as late and never delivers the configuration the others delivered
// there. So Guarantee Vectors also carry the gateway's current
// configuration key; when the gateway and the lowest member of its ring
// have both passed the later of their two configuration keys and the keys
// differ, one of them missed a configuration point, and that member
// multicasts a Resync (counted as configuration_drift_seen).
//
// Deliberate limits (see the report of issue 6): the paper's agreement on
// the SET of messages delivered before a topology change is not provided:
// around a change a message may be delivered by some processors and dropped
// as late by others (never out of order). Messages a ring's single ring
// delivers in a transitional configuration, or before a Sync round that a
// configuration change cut short, are dropped. Take-over re-sends only what
// the taking-over gateway still retains (bounded, 65,536 per source ring)
// and only once its own view of the tree changed. A processor that starts
// (or restarts) assumes every configured edge is live until reports arrive.
// Global configurations inherit the set limit: processors whose views
// differ (a report one dropped as late) deliver different ids at the same
// key until a Resync lines them up, and two processors that deliver the
// same two consecutive configurations may deliver different sets of
// messages between them (never in a different order). A component whose
// members all crashed stays in the table until a report sharing a member
// replaces it; it leaves the configuration once no live gateway links it.
// A copy accepted out of its source's order (reordered_accepted) is
// forwarded on like any other, so the ring behind that gateway may carry
// it after a later message of its source; a Guarantee Vector of that ring
// may then report the later timestamp before the copy is in its stream
// (only the safe-delivery wait for that one message is shortened).
#ifndef TOTEM_CORE_MULTI_RING_H_
#define TOTEM_CORE_MULTI_RING_H_

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "totem/status.h"
#include "totem/types.h"

namespace totem::core {

using RingNumber = uint32_t;

// One edge of the ring graph: a gateway processor on two rings. A gateway
// on three rings is three edges.
struct GatewayLink {
  NodeId gateway = kNoNode;
  RingNumber ring_a = 0;
  RingNumber ring_b = 0;
};

struct MultiRingConfig {
  NodeId node_id = kNoNode;
  std::vector<RingNumber> local_rings;  // rings this processor is on; >= 1
  std::vector<RingNumber> rings;        // every ring of the network
  std::vector<GatewayLink> links;       // every gateway edge
  // Gateways multicast a Guarantee Vector on each of their rings this often.
  uint64_t guarantee_interval_us = 20000;
  // Distinguishes the message ids of successive runs of the same node (the
  // driver persists it and passes a larger one after every restart).
  uint32_t incarnation = 0;
  // The Lamport clock to start from. A processor that restarts at 0 stamps
  // lower timestamps than before its crash while its ring has no member that
  // kept running (a whole ring, or every node, restarted), so its global
  // configuration ids would go down across the restart. A driver that needs
  // them to grow across restarts persists a high-water mark above clock()
  // (reserve ahead, like a sequence block) and passes it here; the processor
  // then delivers nothing with a timestamp at or below it.
  uint64_t initial_clock = 0;

  // Errors (kInvalidArgument): no node id, no local ring, a ring listed
  // twice, a local ring or link ring not in `rings`, a link joining a ring
  // to itself, or this node a gateway of a link that is not on both rings
  // (or on two rings without a link between them).
  Status Validate() const;
};

// A message's place in the global total order.
struct MessageKey {
  uint64_t timestamp = 0;
  RingNumber source_ring = 0;
  NodeId origin = kNoNode;
  uint64_t origin_seq = 0;
  friend auto operator<=>(const MessageKey&, const MessageKey&) = default;
};

struct MultiDelivery {
  MessageKey key;
  Guarantee guarantee = Guarantee::kAgreed;
  std::span<const uint8_t> payload;  // valid during the callback only
  // The global configuration (GlobalConfiguration::id) it is delivered in;
  // {} before the first one.
  ConfigurationId config;
};

// The global configuration: an extended-virtual-synchrony view of the whole
// ring network for applications that need one (the store's primary
// component): every processor of every ring this processor waits for, as
// the rings' latest membership reports say. Delivered in the total order,
// at `key`, so every processor that delivers the messages around it sees it
// at the same logical point with the same members. A processor that does
// not yet know the members of some reachable ring (it just started)
// delivers none until it does.
struct GlobalConfiguration {
  MessageKey key;
  // rep: the lowest member; seq: key.timestamp << 24 | source ring position
  // << 16 | view digest (see "Global configurations" above): a configuration
  // delivered later at a processor has a higher seq.
  ConfigurationId id;
  std::vector<NodeId> members;                             // sorted ascending
  std::map<RingNumber, std::vector<NodeId>> ring_members;  // reachable rings only
};

// One ring's membership report as the view table keeps it.
struct RingReport {
  MessageKey key;               // of the report message
  ConfigurationId config;       // the ring's single-ring configuration: a higher seq is newer
  std::vector<NodeId> members;  // sorted ascending
  friend bool operator==(const RingReport&, const RingReport&) = default;
};
// Per ring, the reports of its current components (disjoint member sets,
// ascending keys): one entry normally, more while the ring is partitioned
// and the parts are reachable by other paths (a cycle of rings).
using ViewTable = std::map<RingNumber, std::vector<RingReport>>;

enum class TopologyChangeKind : uint8_t { kRingGateways = 1, kBridge = 2 };

// A topology change delivered in the total order.
struct TopologyEvent {
  MessageKey key;
  TopologyChangeKind kind = TopologyChangeKind::kRingGateways;
  // kRingGateways: `ring` and the configured gateways now in it.
  // kBridge: `gateways` = {the gateway}, joining `ring` and `other_ring`.
  RingNumber ring = 0;
  RingNumber other_ring = 0;
  std::vector<NodeId> gateways;
  std::vector<RingNumber> reachable;  // rings this processor waits for now, sorted
};

class MultiRingOutput {
 public:
  virtual ~MultiRingOutput() = default;
  // Submit `bytes` to the local ring `ring`'s SingleRing with `guarantee`.
  // The driver submits in call order per ring, after the current input
  // returns, and retries (in order) while the core answers kWouldBlock.
  virtual void SubmitToRing(RingNumber ring, std::span<const uint8_t> bytes,
                            Guarantee guarantee) = 0;
  virtual void Deliver(const MultiDelivery& delivery) = 0;
  virtual void DeliverTopology(const TopologyEvent& event) = 0;
  // The global configuration changed (after DeliverTopology at the same key,
  // if any). Default: ignored.
  virtual void DeliverConfiguration(const GlobalConfiguration& configuration) {
    (void)configuration;
  }
  // Arm (re-arm) the one timer of the layer.
  virtual void SetTimer(uint64_t delay_us) = 0;
};

struct MultiRingCounters {
  uint64_t submitted = 0;
  uint64_t delivered = 0;
  uint64_t topology_delivered = 0;
  uint64_t forwarded = 0;
  uint64_t reforwarded = 0;        // sent again on a tree edge taken over
  uint64_t retained_overflow = 0;  // retained messages dropped past the bound
  uint64_t guarantee_vectors_sent = 0;
  uint64_t duplicates_dropped = 0;
  // Accepted below its source ring's guarantee: a copy that came by another
  // path after a later message of its source (a gateway's join window).
  uint64_t reordered_accepted = 0;
  // Accepted ids forgotten by the duplicate filter's cap (per source ring
  // and origin) before they were delivered past.
  uint64_t dedup_overflow = 0;
  // Join holds (see "Forwarding") that ended after 8 guarantee intervals
  // without the other paths catching up.
  uint64_t join_holds_expired = 0;
  // Key <= the last delivered one: a copy that came another way while the
  // topology changed or a gateway joined, or concurrent with a split.
  uint64_t late_dropped = 0;
  uint64_t unreachable_accepted = 0;  // from a ring this processor does not wait for
  uint64_t malformed_dropped = 0;
  uint64_t held_for_sync = 0;
  uint64_t unsynced_dropped = 0;  // the ring reconfigured before its Sync round ended
  // The ring's own messages delivered in a transitional configuration.
  uint64_t transitional_dropped = 0;
  // A Guarantee Vector showed that its gateway and this processor passed
  // the later of their current global configurations' points with
  // different configurations (one missed a configuration): a Resync follows.
  uint64_t configuration_drift_seen = 0;
  // Filled by the runtime (MultiRingNode): failed writes of the clock file.
  uint64_t clock_persist_errors = 0;
  uint64_t configurations_delivered = 0;
  uint64_t resyncs_sent = 0;
  uint64_t resyncs_delivered = 0;
  // Data messages not for this processor (no local ring among their
  // destinations, or a stub), skipped at their place in the order.
  uint64_t filtered_skipped = 0;
  // Stubs (payload-less copies) a gateway forwarded toward rings that need
  // no payload; also counted in `forwarded`.
  uint64_t stubs_forwarded = 0;
  // Messages for this processor skipped because only a stub reached it.
  uint64_t stub_at_destination = 0;
};

class MultiRing {
 public:
  // Precondition: config.Validate() is OK (aborts otherwise).
  explicit MultiRing(const MultiRingConfig& config);

  void Start(uint64_t now_us, MultiRingOutput& out);

  // Originates an application message on this processor's first local ring.
  // Errors: kUnavailable before Start.
  Status Submit(std::span<const uint8_t> payload, Guarantee guarantee, uint64_t now_us,
                MultiRingOutput& out);
  // The same, delivered only to the processors of `destinations` (rings;
  // empty: every ring). Gateways forward the payload only toward rings on
  // the way to a destination (group filtering); the other rings get a
  // payload-less stub that keeps the order and the guarantees exact.
  // Errors: kUnavailable before Start; kInvalidArgument if a destination is
  // not a configured ring, is listed twice, or there are more than
  // kMaxDestinations.
  static constexpr size_t kMaxDestinations = 64;
  Status Submit(std::span<const uint8_t> payload, Guarantee guarantee,
                std::span<const RingNumber> destinations, uint64_t now_us, MultiRingOutput& out);

  // Inputs from the single-ring core of local ring `ring`.
  void HandleRingDelivery(RingNumber ring, const Delivery& delivery, uint64_t now_us,
                          MultiRingOutput& out);
  void HandleRingConfiguration(RingNumber ring, const ConfigurationEvent& event, uint64_t now_us,
                               MultiRingOutput& out);
  void HandleTimer(uint64_t now_us, MultiRingOutput& out);

  const MultiRingCounters& counters() const { return counters_; }
  bool is_gateway() const { return config_.local_rings.size() > 1; }
  std::vector<RingNumber> Reachable() const;
  uint64_t clock() const { return clock_; }
  // The view table and the last global configuration delivered (valid only
  // if have_configuration()).
  const ViewTable& view() const { return view_; }
  bool have_configuration() const { return have_config_; }
  const GlobalConfiguration& configuration() const { return global_; }
  size_t queued() const { return queue_.size(); }
  // Why the head of the queue is not delivered ("" if empty or deliverable).
  std::string BlockedReason() const;

 private:
  enum class Type : uint8_t { kData = 1, kGuaranteeVector = 2, kTopology = 3, kSync = 4 };
  struct Envelope;
  struct Entry {
    Type type = Type::kData;
    Guarantee guarantee = Guarantee::kAgreed;
    uint64_t safe_on = 0;  // bit i: got as a safe delivery on local_rings[i]
    // Data not delivered here: not for this processor, or only a stub came.
    bool skip = false;
    bool stub_at_destination = false;  // for this processor, but a stub so far
    std::vector<uint8_t> payload;
    TopologyEvent topology;
    RingReport report;    // kRingGateways: the ring's membership report
    bool resync = false;  // a Resync carrying `table`
    ViewTable table;
  };
  struct Edge {
    GatewayLink link;
    bool live = true;
  };
  // kSyncing: the ring's own messages are held until every member's Sync
  // is in; kStamping: they are stamped as delivered; kDropping: the round
  // failed (or no configuration yet), they are dropped until the next one.
  enum class SyncState : uint8_t { kSyncing, kStamping, kDropping };
  struct LocalRing {
    RingNumber ring = 0;
    ConfigurationId config;
    std::vector<NodeId> members;
    bool regular = false;  // in a regular configuration (not transitional)
    SyncState state = SyncState::kDropping;
    std::set<NodeId> sync_from;
    uint64_t sync_floor = 0;
    uint64_t prev_eff = 0;
    std::vector<std::pair<std::vector<uint8_t>, bool>> held;  // frame, safe delivery
    std::map<RingNumber, uint64_t> seen;  // highest timestamp per source in this stream
    // Join hold (see "Forwarding" above): set when the Sync round of a
    // configuration this processor joined ends, on a gateway.
    bool joining = false;
    bool join_hold = false;
    uint64_t join_floor = 0;  // the round's sync floor
    uint32_t join_hold_timers = 0;
  };
  struct Presence {
    bool have_version = false;
    MessageKey version;
    std::set<NodeId> gateways;  // configured gateways of the ring that are in it
  };
  struct Source {
    bool reachable = true;
    bool have_guarantee = false;
    MessageKey guarantee;  // no later message from it has a key <= this
    size_t queued = 0;
  };

  LocalRing* FindLocal(RingNumber ring);
  int LocalIndex(RingNumber ring) const;
  void Originate(RingNumber ring, Type type, Guarantee guarantee, std::vector<uint8_t> body,
                 MultiRingOutput& out);
  void StampHeld(int index, MultiRingOutput& out);
  void Stamp(int index, std::span<const uint8_t> frame, bool safe, MultiRingOutput& out);
  void Accept(int index, Envelope& env, std::span<const uint8_t> body, bool safe, NodeId sender,
              MultiRingOutput& out);
  void Forward(const Envelope& env, std::span<const uint8_t> body, MultiRingOutput& out);
  // True if a local ring of this processor is among `destinations` (or
  // they are empty: every ring).
  bool Destined(std::span<const RingNumber> destinations) const;
  // Drops retained messages of `source` that every reachable ring reported.
  void PruneRetained(RingNumber source);
  // After the tree changed: re-forwards, on each tree edge this gateway
  // newly owns, the retained messages the ring behind it has not reported.
  void TakeOverTreeEdges(MultiRingOutput& out);
  // A report (by key `version`) of which configured gateways are members of
  // `ring`: replaces the set, or adds to it (`add_only`, a Bridge); older
  // reports than the last one taken are ignored.
  void ReportPresence(RingNumber ring, const MessageKey& version,
                      const std::vector<NodeId>& gateways, bool add_only);
  bool HasGateways(RingNumber ring) const;
  std::vector<NodeId> PresentGateways(const LocalRing& lr) const;
  void RecomputeReachable();
  // parent[ring] = (parent ring, gateway) of the BFS tree rooted at `root`.
  using TreeMap = std::map<RingNumber, std::pair<RingNumber, NodeId>>;
  const TreeMap& Tree(RingNumber root) const;
  // True if the subtree of `tree` (rooted at `source`) behind ring `toward`
  // holds a ring that needs the payload of a message for `destinations`.
  bool NeedsPayload(const TreeMap& tree, RingNumber source, RingNumber toward,
                    std::span<const RingNumber> destinations) const;
  bool SafeEverywhere(const MessageKey& key, const Entry& e) const;
  // The highest timestamp of `lr`'s ring's messages in the streams of this
  // processor's other rings.
  uint64_t OtherPaths(const LocalRing& lr) const;
  // True if a join hold keeps `key` back (and ends the holds whose other
  // paths caught up).
  bool JoinHeld(const MessageKey& key);
  void TryDeliver(MultiRingOutput& out);
  // Global configurations (see the header comment): what a Guarantee Vector
  // of `source` says about views; delivering a report or a Resync.
  void AbsorbVectorView(RingNumber source, const ViewTable& table, bool have_last,
                        const MessageKey& last, bool have_config, const MessageKey& config_key,
                        MultiRingOutput& out);
  void DeliverView(const MessageKey& key, bool resync, MultiRingOutput& out);

  const MultiRingConfig config_;
  bool started_ = false;
  uint64_t clock_ = 0;  // Lamport clock: >= every timestamp accepted
  uint64_t next_seq_ = 0;
  std::vector<LocalRing> local_;
  std::vector<Edge> edges_;  // sorted by (gateway, ring_a, ring_b); live: present on both
  std::map<RingNumber, Presence> presence_;
  bool tree_changed_ = false;
  // Gateways: (source ring, local ring) tree edges this gateway owns, and the
  // messages it accepted that some ring has not reported yet.
  struct Retained {
    uint64_t effective = 0;
    Guarantee guarantee = Guarantee::kAgreed;
    std::vector<uint8_t> frame;  // the envelope as forwarded
  };
  std::set<std::pair<RingNumber, RingNumber>> parent_of_;
  std::map<RingNumber, std::deque<Retained>> retained_;
  mutable std::map<RingNumber, TreeMap> tree_cache_;  // cleared when an edge changes
  std::map<RingNumber, Source> sources_;
  // recv_[r][s]: a Guarantee Vector of ring r said its members have every
  // message from s up to this timestamp.
  std::map<RingNumber, std::map<RingNumber, uint64_t>> recv_;
  // Duplicate filter, per (source ring, origin): the origin seqs accepted
  // (with their effective timestamps) above a floor. An id at or below the
  // floor was accepted or is late (the floor only moves to ids whose key is
  // at or below the last delivered key, or past the cap, counted).
  struct AcceptedIds {
    uint64_t floor = 0;
    std::map<uint64_t, uint64_t> above;  // origin seq -> effective timestamp
  };
  std::map<std::pair<RingNumber, NodeId>, AcceptedIds> accepted_;
  std::map<MessageKey, Entry> queue_;
  bool delivered_any_ = false;
  MessageKey last_delivered_;
  // Global configurations: the view table (delivered reports, merged
  // Resyncs), entries adopted from Guarantee Vectors that the next Resync
  // carries, and the last configuration delivered.
  ViewTable view_;
  ViewTable adopted_;
  bool resync_outstanding_ = false;
  uint64_t resync_seq_ = 0;  // origin seq of the outstanding Resync
  uint32_t vectors_since_resync_ = 0;
  bool have_config_ = false;
  GlobalConfiguration global_;
  std::vector<std::pair<RingNumber, ConfigurationId>> global_ring_ids_;
  MultiRingCounters counters_;
};

}  // namespace totem::core

#endif  // TOTEM_CORE_MULTI_RING_H_

// The node's durable state: the ring sequence number, kept in a small file in
// NodeConfig::state_dir so ring ids keep increasing across restarts (the
// membership protocol must never reuse a ring id a processor has used).
//
// Layout of state_dir:
//     ring_seq       "totem-ring-seq v1\n<decimal>\n"
//     ring_seq.tmp   the next version while it is being written
//     lock           flock(2)ed by the node that owns the directory, so two
//                    processes cannot share one state (released on any exit,
//                    kill -9 included)
//
// Writes are atomic and durable: the new value goes to ring_seq.tmp, which is
// fsync'ed and renamed over ring_seq, then the directory is fsync'ed; a crash
// at any point leaves either the old or the new value. A file that exists
// but does not parse is an error (the node refuses to start) rather than
// silently replaced.
//
// Without a state file (first start, a fresh directory, or no state_dir at
// all) the starting value is the wall clock in seconds since the epoch
// shifted left by 20 bits: it exceeds every value used before as long as the
// clock only moves forward between runs and a node forms fewer than 2^20
// rings per second of uptime. The core then uses ring sequence numbers above
// it.
#ifndef TOTEM_RUNTIME_STATE_FILE_H_
#define TOTEM_RUNTIME_STATE_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "totem/status.h"

namespace totem::runtime {

// Wall-clock microseconds since the epoch: the ring sequence a node starts
// from when nothing was persisted. It exceeds every ring seq the node used
// before unless it formed more than one ring per microsecond, so a wiped
// node never reuses a ring id, even when wiped twice in one second.
uint64_t ClockDerivedRingSeq();

class RingSeqStore {
 public:
  // Creates `dir` (one level, mode 0700) if missing, locks it and reads the
  // persisted value. When there is none, the clock-derived value is written
  // at once, so an unwritable directory fails here and not later.
  static StatusOr<std::unique_ptr<RingSeqStore>> Open(const std::string& dir);
  ~RingSeqStore();
  RingSeqStore(const RingSeqStore&) = delete;
  RingSeqStore& operator=(const RingSeqStore&) = delete;

  // The value to hand to the core's constructor.
  uint64_t initial() const { return initial_; }
  // True if `initial()` came from the state file (not from the clock).
  bool loaded() const { return loaded_; }
  // The last value written (or loaded).
  uint64_t last_written() const { return last_written_; }

  // Persists `seq` durably and atomically. Values not above the last one
  // written are accepted and skipped (nothing to do).
  Status Write(uint64_t seq);

  // The path of the state file (for messages and tests).
  const std::string& path() const { return path_; }

  // Reads a state file; exposed for tests and tools.
  static StatusOr<uint64_t> ReadFile(const std::string& path);

 private:
  RingSeqStore() = default;

  std::string dir_;
  std::string path_;
  std::string tmp_path_;
  int dir_fd_ = -1;
  int lock_fd_ = -1;
  uint64_t initial_ = 0;
  uint64_t last_written_ = 0;
  bool loaded_ = false;
  bool have_value_ = false;  // last_written_ is meaningful
};

}  // namespace totem::runtime

#endif  // TOTEM_RUNTIME_STATE_FILE_H_

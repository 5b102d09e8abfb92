// The ring sequence state file (state_file.h): open + lock the state
// directory, strict parsing of the file, and the write-temp / fsync / rename
// / fsync-directory sequence that makes every update atomic and durable.
#include "state_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <string_view>

#include "file_io.h"

namespace totem::runtime {

namespace {

constexpr std::string_view kHeader = "totem-ring-seq v1";
constexpr size_t kMaxFileBytes = 4096;

}  // namespace

uint64_t ClockDerivedRingSeq() {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return static_cast<uint64_t>(us > 0 ? us : 0);
}

StatusOr<uint64_t> RingSeqStore::ReadFile(const std::string& path) {
  StatusOr<std::string> read = ReadSmallFile(path, kMaxFileBytes, "state file");
  if (!read.ok()) return read.status();
  const std::string& text = read.value();
  const std::string corrupt = "state file " + path + " is corrupt (expected '" +
                              std::string(kHeader) +
                              "' and a decimal ring sequence on two lines; remove the file to "
                              "start from a clock-derived ring sequence)";
  std::string_view rest(text);
  const size_t nl = rest.find('\n');
  if (nl == std::string_view::npos || rest.substr(0, nl) != kHeader) {
    return InvalidArgument(corrupt);
  }
  std::string_view digits = rest.substr(nl + 1);
  if (digits.empty() || digits.back() != '\n') return InvalidArgument(corrupt);
  digits.remove_suffix(1);
  if (digits.empty() || digits.size() > 20) return InvalidArgument(corrupt);
  uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return InvalidArgument(corrupt);
    const auto d = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - d) / 10) return InvalidArgument(corrupt);
    value = value * 10 + d;
  }
  return value;
}

StatusOr<std::unique_ptr<RingSeqStore>> RingSeqStore::Open(const std::string& dir) {
  std::unique_ptr<RingSeqStore> s(new RingSeqStore());
  s->dir_ = dir;
  s->path_ = dir + "/ring_seq";
  s->tmp_path_ = dir + "/ring_seq.tmp";
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return IoError(ErrnoMessage("cannot create state_dir", dir));
  }
  s->dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->dir_fd_ < 0) return IoError(ErrnoMessage("cannot open state_dir", dir));
  const std::string lock_path = dir + "/lock";
  s->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (s->lock_fd_ < 0) return IoError(ErrnoMessage("cannot open", lock_path));
  if (::flock(s->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status(
          StatusCode::kFailedPrecondition,
          "state_dir " + dir + " is in use by another running node (" + lock_path + " is locked)");
    }
    return IoError(ErrnoMessage("cannot lock", lock_path));
  }
  struct stat st {};
  if (::stat(s->path_.c_str(), &st) == 0) {
    StatusOr<uint64_t> v = ReadFile(s->path_);
    if (!v.ok()) return v.status();
    s->initial_ = *v;
    s->last_written_ = *v;
    s->have_value_ = true;
    s->loaded_ = true;
  } else if (errno == ENOENT) {
    s->initial_ = ClockDerivedRingSeq();
    if (Status w = s->Write(s->initial_); !w.ok()) return w;
  } else {
    return IoError(ErrnoMessage("cannot stat", s->path_));
  }
  return s;
}

RingSeqStore::~RingSeqStore() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

Status RingSeqStore::Write(uint64_t seq) {
  if (have_value_ && seq <= last_written_) return Status::Ok();
  const std::string text = std::string(kHeader) + "\n" + std::to_string(seq) + "\n";
  Status st = ReplaceFileAtomically(path_, tmp_path_, text, dir_fd_);
  if (!st.ok()) return st;
  last_written_ = seq;
  have_value_ = true;
  return Status::Ok();
}

}  // namespace totem::runtime

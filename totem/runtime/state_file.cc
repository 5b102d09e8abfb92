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

namespace totem::runtime {

namespace {

constexpr std::string_view kHeader = "totem-ring-seq v1";
constexpr size_t kMaxFileBytes = 4096;

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

uint64_t ClockDerivedRingSeq() {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return static_cast<uint64_t>(us > 0 ? us : 0);
}

StatusOr<uint64_t> RingSeqStore::ReadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(Errno("cannot open", path));
  std::string text;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = IoError(Errno("cannot read", path));
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFileBytes) break;
  }
  ::close(fd);
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
    return IoError(Errno("cannot create state_dir", dir));
  }
  s->dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->dir_fd_ < 0) return IoError(Errno("cannot open state_dir", dir));
  const std::string lock_path = dir + "/lock";
  s->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (s->lock_fd_ < 0) return IoError(Errno("cannot open", lock_path));
  if (::flock(s->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status(
          StatusCode::kFailedPrecondition,
          "state_dir " + dir + " is in use by another running node (" + lock_path + " is locked)");
    }
    return IoError(Errno("cannot lock", lock_path));
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
    return IoError(Errno("cannot stat", s->path_));
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
  const int fd = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError(Errno("cannot create", tmp_path_));
  const bool ok = WriteAll(fd, text) && ::fdatasync(fd) == 0;
  Status st = ok ? Status::Ok() : IoError(Errno("cannot write", tmp_path_));
  if (::close(fd) != 0 && st.ok()) st = IoError(Errno("cannot close", tmp_path_));
  if (st.ok() && ::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    st = IoError(Errno("cannot rename " + tmp_path_ + " to", path_));
  }
  if (st.ok() && ::fsync(dir_fd_) != 0) st = IoError(Errno("cannot fsync directory", dir_));
  if (!st.ok()) {
    ::unlink(tmp_path_.c_str());
    return st;
  }
  last_written_ = seq;
  have_value_ = true;
  return Status::Ok();
}

}  // namespace totem::runtime

// Bounded reads and atomic, durable file replacement (file_io.h).
#include "file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace totem::runtime {

namespace {
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

std::string ErrnoMessage(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes,
                                    const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(ErrnoMessage("cannot open " + what, path));
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = IoError(ErrnoMessage("cannot read " + what, path));
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > max_bytes) {
      ::close(fd);
      return InvalidArgument(what + " " + path + " is larger than " + std::to_string(max_bytes) +
                             " bytes");
    }
  }
  ::close(fd);
  return text;
}

Status ReplaceFileAtomically(const std::string& path, const std::string& tmp_path,
                             const std::string& text, int dir_fd) {
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError(ErrnoMessage("cannot create", tmp_path));
  // The umask cannot widen 0600, but an inherited ACL could: pin the mode.
  const bool ok = ::fchmod(fd, 0600) == 0 && WriteAll(fd, text) && ::fdatasync(fd) == 0;
  Status st = ok ? Status::Ok() : IoError(ErrnoMessage("cannot write", tmp_path));
  if (::close(fd) != 0 && st.ok()) st = IoError(ErrnoMessage("cannot close", tmp_path));
  if (st.ok() && ::rename(tmp_path.c_str(), path.c_str()) != 0) {
    st = IoError(ErrnoMessage("cannot rename " + tmp_path + " to", path));
  }
  if (st.ok() && dir_fd >= 0 && ::fsync(dir_fd) != 0) {
    st = IoError(ErrnoMessage("cannot fsync the directory of", path));
  }
  if (!st.ok()) ::unlink(tmp_path.c_str());
  return st;
}

}  // namespace totem::runtime

// Small POSIX file helpers shared by the key file and the ring-sequence
// state file: bounded reads and atomic, durable replacement of a file.
#ifndef TOTEM_RUNTIME_FILE_IO_H_
#define TOTEM_RUNTIME_FILE_IO_H_

#include <cstddef>
#include <string>

#include "totem/status.h"

namespace totem::runtime {

// "<what> <path>: <strerror(errno)>".
std::string ErrnoMessage(const std::string& what, const std::string& path);

// Reads a whole file of at most `max_bytes`. Errors: kIoError (open/read
// failed, message names `what` and the path), kInvalidArgument (larger than
// max_bytes).
StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes,
                                    const std::string& what);

// Replaces `path` with `text` atomically: writes `tmp_path` (mode 0600,
// pinned with fchmod), syncs it, renames it over `path`, and, when
// `dir_fd` >= 0, syncs that directory so the rename itself is durable. On
// any failure the temporary file is removed and `path` is untouched.
Status ReplaceFileAtomically(const std::string& path, const std::string& tmp_path,
                             const std::string& text, int dir_fd);

}  // namespace totem::runtime

#endif  // TOTEM_RUNTIME_FILE_IO_H_

// A small Status / StatusOr for the Totem library's public boundary. The
// library throws no exceptions across its API: every fallible call returns
// one of these with a code a caller can act on and a precise message.
#ifndef TOTEM_STATUS_H_
#define TOTEM_STATUS_H_

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

namespace totem {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong; retrying will not help
  kWouldBlock,          // a bounded queue is full; retry after it drains
  kResourceExhausted,   // a hard limit was hit (e.g. message too large)
  kFailedPrecondition,  // the object is not in a state that allows the call
  kIoError,             // the operating system refused (socket, file)
  kUnavailable,         // the node is stopped or not yet started
  kInternal,
};
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) std::abort();                       // an OK StatusOr must hold a value
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace totem

#endif  // TOTEM_STATUS_H_

// Status and StatusOr<T>: how every totemkv_client call reports its outcome.
// A Status carries the gRPC status code and message of the failed call
// (or a client-side code such as INVALID_ARGUMENT for a bad request, or
// UNAVAILABLE when no endpoint could be reached), so callers can branch on
// the same codes an etcd client would see.
#ifndef TOTEMKV_CLIENT_STATUS_H_
#define TOTEMKV_CLIENT_STATUS_H_

#include <grpcpp/support/status.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

namespace totemkv::client {

using StatusCode = grpc::StatusCode;

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status FromGrpc(const grpc::Status& s) { return {s.error_code(), s.error_message()}; }

  bool ok() const { return code_ == StatusCode::OK; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "UNAVAILABLE: connection refused"; "OK" when ok().
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::OK;
  std::string message_;
};

// Name of a code as gRPC spells it ("DEADLINE_EXCEEDED").
const char* StatusCodeName(StatusCode code);

// Either a value or a non-OK Status. value() on an error aborts: check ok().
template <typename T>
class StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) status_ = Status(StatusCode::INTERNAL, "StatusOr built from OK status");
  }
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  const T& value() const& {
    if (!value_) std::abort();
    return *value_;
  }
  T& value() & {
    if (!value_) std::abort();
    return *value_;
  }
  T&& value() && {
    if (!value_) std::abort();
    return std::move(*value_);
  }
  const T& operator*() const& { return value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace totemkv::client

#endif  // TOTEMKV_CLIENT_STATUS_H_

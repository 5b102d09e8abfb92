// Frame authentication for the UDP transport (ARCHITECTURE.md 3.5): every
// datagram is the core's frame followed by an HMAC-SHA256 tag over the frame,
// keyed by the cluster key. The full 32-byte tag is sent (no truncation):
// RingConfig::max_frame_bytes already leaves room for it below the MTU, and
// 16 extra bytes per frame buy nothing measurable. Verification compares in
// constant time (CRYPTO_memcmp). Private to the runtime.
#ifndef TOTEM_RUNTIME_AUTH_H_
#define TOTEM_RUNTIME_AUTH_H_

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "totem/status.h"

namespace totem::runtime {

class FrameAuth {
 public:
  static constexpr size_t kTagBytes = 32;
  static constexpr size_t kMinKeyBytes = 16;

  // Errors: kInvalidArgument (key shorter than kMinKeyBytes), kInternal
  // (OpenSSL could not provide HMAC-SHA256).
  static StatusOr<std::unique_ptr<FrameAuth>> Create(std::string_view key);
  ~FrameAuth();
  FrameAuth(const FrameAuth&) = delete;
  FrameAuth& operator=(const FrameAuth&) = delete;

  // Writes the tag of `frame` into `tag`. Returns false only if OpenSSL
  // fails (the caller must not send the frame). Not thread-safe: one
  // FrameAuth per thread (the node's I/O thread owns its one).
  bool Sign(std::span<const uint8_t> frame, std::span<uint8_t, kTagBytes> tag);

  // True if `datagram` is a frame followed by its valid tag (then the frame
  // is datagram.first(datagram.size() - kTagBytes)). Constant-time compare.
  bool Verify(std::span<const uint8_t> datagram);

 private:
  FrameAuth() = default;
  EVP_MAC* mac_ = nullptr;
  // Keyed once; re-initialised with a null key per frame, which in OpenSSL 3
  // resets HMAC to the precomputed key state without allocating.
  EVP_MAC_CTX* ctx_ = nullptr;
};

}  // namespace totem::runtime

#endif  // TOTEM_RUNTIME_AUTH_H_

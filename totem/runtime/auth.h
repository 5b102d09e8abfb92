// Frame protection for the UDP transport (ARCHITECTURE.md 3.5). Two modes,
// chosen by TransportConfig::encrypt; every member of a ring must use the
// same one (a datagram of the other mode fails verification):
//  - authentication only (default): the datagram is the core's frame
//    followed by an HMAC-SHA256 tag over it, keyed by the cluster key. The
//    full 32-byte tag is sent (no truncation): RingConfig::max_frame_bytes
//    already leaves room for it below the MTU.
//  - encryption: AES-256-GCM. The datagram is a fresh random 96-bit nonce,
//    the encrypted frame and the 16-byte GCM tag (28 bytes of overhead,
//    less than the HMAC's 32). The AES key is derived from the cluster key
//    with HKDF-SHA256 and its own label, so it never equals the HMAC key.
//    With random nonces, after n frames under one key (all members
//    together) the chance that two share a nonce is about n^2 / 2^97:
//    2^-33 after 2^32 frames, 2^-17 after 2^40 (four months at 100k
//    frames/s). Rotate the cluster key well before that.
// Verification compares in constant time (CRYPTO_memcmp, GCM's own check).
// Private to the runtime; the nonces come from OpenSSL's CSPRNG (seeded by
// the OS), which is why this lives in the runtime and never in the cores.
#ifndef TOTEM_RUNTIME_AUTH_H_
#define TOTEM_RUNTIME_AUTH_H_

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "totem/status.h"

namespace totem::runtime {

class FrameAuth {
 public:
  static constexpr size_t kHmacTagBytes = 32;
  static constexpr size_t kNonceBytes = 12;
  static constexpr size_t kGcmTagBytes = 16;
  // The larger overhead of the two modes (what max_frame_bytes budgets).
  static constexpr size_t kMaxOverheadBytes = kHmacTagBytes;
  static constexpr size_t kMinKeyBytes = 16;

  // Errors: kInvalidArgument (key shorter than kMinKeyBytes), kInternal
  // (OpenSSL could not provide HMAC-SHA256, HKDF or AES-256-GCM).
  static StatusOr<std::unique_ptr<FrameAuth>> Create(std::string_view key, bool encrypt);
  ~FrameAuth();
  FrameAuth(const FrameAuth&) = delete;
  FrameAuth& operator=(const FrameAuth&) = delete;

  bool encrypts() const { return encrypt_; }
  // Bytes a datagram carries beyond its frame: kHmacTagBytes, or
  // kNonceBytes + kGcmTagBytes when encrypting.
  size_t overhead_bytes() const { return encrypt_ ? kNonceBytes + kGcmTagBytes : kHmacTagBytes; }

  // Writes the datagram carrying `frame` to `out`, which must have room for
  // frame.size() + overhead_bytes() bytes and must not overlap `frame`.
  // Returns false only if OpenSSL fails (the caller must not send it).
  // Not thread-safe: one FrameAuth per thread (the node's I/O thread owns
  // its one).
  bool Seal(std::span<const uint8_t> frame, uint8_t* out);

  // If `datagram` was sealed with this key and mode, returns its frame, a
  // subspan of `datagram` (decrypted in place when encrypting, so the
  // datagram's bytes are overwritten either way). nullopt for anything
  // else: too short, wrong key, other mode, modified, truncated.
  std::optional<std::span<const uint8_t>> Open(std::span<uint8_t> datagram);

 private:
  FrameAuth() = default;
  bool Hmac(std::span<const uint8_t> frame, uint8_t* tag);

  bool encrypt_ = false;
  EVP_MAC* mac_ = nullptr;
  // Keyed once; re-initialised with a null key per frame, which in OpenSSL 3
  // resets HMAC to the precomputed key state without allocating.
  EVP_MAC_CTX* mac_ctx_ = nullptr;
  // AES-256-GCM contexts keyed once (the key schedule is kept); each frame
  // only sets its nonce.
  EVP_CIPHER_CTX* seal_ctx_ = nullptr;
  EVP_CIPHER_CTX* open_ctx_ = nullptr;
};

}  // namespace totem::runtime

#endif  // TOTEM_RUNTIME_AUTH_H_

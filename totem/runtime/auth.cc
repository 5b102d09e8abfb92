// HMAC-SHA256 frame tags through OpenSSL 3's EVP_MAC interface.
#include "auth.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include <string>

namespace totem::runtime {

StatusOr<std::unique_ptr<FrameAuth>> FrameAuth::Create(std::string_view key) {
  if (key.size() < kMinKeyBytes) {
    return InvalidArgument("cluster key is " + std::to_string(key.size()) + " bytes; at least " +
                           std::to_string(kMinKeyBytes) + " are required");
  }
  std::unique_ptr<FrameAuth> auth(new FrameAuth());
  auth->mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (auth->mac_ == nullptr) return Status(StatusCode::kInternal, "OpenSSL: HMAC not available");
  auth->ctx_ = EVP_MAC_CTX_new(auth->mac_);
  if (auth->ctx_ == nullptr)
    return Status(StatusCode::kInternal, "OpenSSL: EVP_MAC_CTX_new failed");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_init(auth->ctx_, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                   params) != 1) {
    return Status(StatusCode::kInternal, "OpenSSL: HMAC-SHA256 init failed");
  }
  return auth;
}

FrameAuth::~FrameAuth() {
  EVP_MAC_CTX_free(ctx_);
  EVP_MAC_free(mac_);
}

bool FrameAuth::Sign(std::span<const uint8_t> frame, std::span<uint8_t, kTagBytes> tag) {
  size_t out_len = 0;
  return EVP_MAC_init(ctx_, nullptr, 0, nullptr) == 1 &&
         EVP_MAC_update(ctx_, frame.data(), frame.size()) == 1 &&
         EVP_MAC_final(ctx_, tag.data(), &out_len, tag.size()) == 1 && out_len == kTagBytes;
}

bool FrameAuth::Verify(std::span<const uint8_t> datagram) {
  if (datagram.size() < kTagBytes) return false;
  const size_t frame_len = datagram.size() - kTagBytes;
  uint8_t expected[kTagBytes];
  if (!Sign(datagram.first(frame_len), std::span<uint8_t, kTagBytes>(expected))) return false;
  return CRYPTO_memcmp(expected, datagram.data() + frame_len, kTagBytes) == 0;
}

}  // namespace totem::runtime

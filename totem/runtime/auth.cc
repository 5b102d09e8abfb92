// Frame protection through OpenSSL 3: HMAC-SHA256 tags (EVP_MAC) or
// AES-256-GCM (EVP_CIPHER) with an HKDF-derived key. See auth.h.
#include "auth.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cstring>
#include <string>

namespace totem::runtime {

namespace {

// HKDF "info" of the encryption key: a distinct label, so the AES key is
// independent of the HMAC key (the raw cluster key) and of any later use.
// Part of the wire protocol: changing it breaks rings with older members.
constexpr std::string_view kEncryptionLabel = "totem ring encryption v1 aes-256-gcm";
constexpr size_t kAesKeyBytes = 32;

Status Internal(const std::string& what) {
  return Status(StatusCode::kInternal, "OpenSSL: " + what);
}

// HKDF-SHA256(key, salt = "", info = label) -> 32 bytes.
bool DeriveKey(std::string_view key, std::string_view label, uint8_t* out) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return false;
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr) return false;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(key.data()),
                                        key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(label.data()),
                                        label.size()),
      OSSL_PARAM_construct_end(),
  };
  const bool ok = EVP_KDF_derive(ctx, out, kAesKeyBytes, params) == 1;
  EVP_KDF_CTX_free(ctx);
  return ok;
}

}  // namespace

StatusOr<std::unique_ptr<FrameAuth>> FrameAuth::Create(std::string_view key, bool encrypt) {
  if (key.size() < kMinKeyBytes) {
    return InvalidArgument("cluster key is " + std::to_string(key.size()) + " bytes; at least " +
                           std::to_string(kMinKeyBytes) + " are required");
  }
  std::unique_ptr<FrameAuth> auth(new FrameAuth());
  auth->encrypt_ = encrypt;
  if (encrypt) {
    uint8_t aes_key[kAesKeyBytes];
    if (!DeriveKey(key, kEncryptionLabel, aes_key)) return Internal("HKDF-SHA256 failed");
    auth->seal_ctx_ = EVP_CIPHER_CTX_new();
    auth->open_ctx_ = EVP_CIPHER_CTX_new();
    const bool ok =
        auth->seal_ctx_ != nullptr && auth->open_ctx_ != nullptr &&
        EVP_EncryptInit_ex(auth->seal_ctx_, EVP_aes_256_gcm(), nullptr, aes_key, nullptr) == 1 &&
        EVP_DecryptInit_ex(auth->open_ctx_, EVP_aes_256_gcm(), nullptr, aes_key, nullptr) == 1;
    OPENSSL_cleanse(aes_key, sizeof(aes_key));
    if (!ok) return Internal("AES-256-GCM init failed");
    return auth;
  }
  auth->mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (auth->mac_ == nullptr) return Internal("HMAC not available");
  auth->mac_ctx_ = EVP_MAC_CTX_new(auth->mac_);
  if (auth->mac_ctx_ == nullptr) return Internal("EVP_MAC_CTX_new failed");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_init(auth->mac_ctx_, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                   params) != 1) {
    return Internal("HMAC-SHA256 init failed");
  }
  return auth;
}

FrameAuth::~FrameAuth() {
  EVP_CIPHER_CTX_free(seal_ctx_);
  EVP_CIPHER_CTX_free(open_ctx_);
  EVP_MAC_CTX_free(mac_ctx_);
  EVP_MAC_free(mac_);
}

bool FrameAuth::Hmac(std::span<const uint8_t> frame, uint8_t* tag) {
  size_t out_len = 0;
  return EVP_MAC_init(mac_ctx_, nullptr, 0, nullptr) == 1 &&
         EVP_MAC_update(mac_ctx_, frame.data(), frame.size()) == 1 &&
         EVP_MAC_final(mac_ctx_, tag, &out_len, kHmacTagBytes) == 1 && out_len == kHmacTagBytes;
}

bool FrameAuth::Seal(std::span<const uint8_t> frame, uint8_t* out) {
  if (!encrypt_) {
    std::memcpy(out, frame.data(), frame.size());
    return Hmac(frame, out + frame.size());
  }
  // nonce | ciphertext | tag
  uint8_t* nonce = out;
  uint8_t* body = out + kNonceBytes;
  int len = 0;
  int final_len = 0;
  return frame.size() <= static_cast<size_t>(INT32_MAX) &&
         RAND_bytes(nonce, static_cast<int>(kNonceBytes)) == 1 &&
         EVP_EncryptInit_ex(seal_ctx_, nullptr, nullptr, nullptr, nonce) == 1 &&
         EVP_EncryptUpdate(seal_ctx_, body, &len, frame.data(), static_cast<int>(frame.size())) ==
             1 &&
         EVP_EncryptFinal_ex(seal_ctx_, body + len, &final_len) == 1 &&
         static_cast<size_t>(len + final_len) == frame.size() &&
         EVP_CIPHER_CTX_ctrl(seal_ctx_, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kGcmTagBytes),
                             body + frame.size()) == 1;
}

std::optional<std::span<const uint8_t>> FrameAuth::Open(std::span<uint8_t> datagram) {
  const size_t overhead = overhead_bytes();
  if (datagram.size() <= overhead) return std::nullopt;
  const size_t frame_len = datagram.size() - overhead;
  if (!encrypt_) {
    uint8_t expected[kHmacTagBytes];
    if (!Hmac(datagram.first(frame_len), expected) ||
        CRYPTO_memcmp(expected, datagram.data() + frame_len, kHmacTagBytes) != 0) {
      return std::nullopt;
    }
    return std::span<const uint8_t>(datagram.data(), frame_len);
  }
  if (frame_len > static_cast<size_t>(INT32_MAX)) return std::nullopt;
  uint8_t* nonce = datagram.data();
  uint8_t* body = datagram.data() + kNonceBytes;
  uint8_t tag[kGcmTagBytes];
  std::memcpy(tag, body + frame_len, kGcmTagBytes);
  int len = 0;
  int final_len = 0;
  // In place: GCM decrypts a buffer onto itself. The plaintext is only
  // returned once the tag has been checked (EVP_DecryptFinal_ex).
  if (EVP_DecryptInit_ex(open_ctx_, nullptr, nullptr, nullptr, nonce) != 1 ||
      EVP_DecryptUpdate(open_ctx_, body, &len, body, static_cast<int>(frame_len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(open_ctx_, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kGcmTagBytes), tag) !=
          1 ||
      EVP_DecryptFinal_ex(open_ctx_, body + len, &final_len) != 1 ||
      static_cast<size_t>(len + final_len) != frame_len) {
    return std::nullopt;
  }
  return std::span<const uint8_t>(body, frame_len);
}

}  // namespace totem::runtime

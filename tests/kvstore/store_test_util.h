// Small builders of MvccStore ops shared by the kvstore tests.
#ifndef TOTEMKV_TESTS_KVSTORE_STORE_TEST_UTIL_H_
#define TOTEMKV_TESTS_KVSTORE_STORE_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <utility>

#include "kvstore/types.h"

namespace kvstore::testing {

// An op carrying `request`; a nonzero `id` sets the op id's last byte.
inline Op MakeOp(decltype(Op::request) request, uint8_t id = 0) {
  Op op;
  op.request = std::move(request);
  if (id != 0) op.op_id[15] = id;
  return op;
}

inline PutRequest Put(std::string key, std::string value, int64_t lease = 0) {
  PutRequest p;
  p.key = std::move(key);
  p.value = std::move(value);
  p.lease = lease;
  return p;
}

}  // namespace kvstore::testing

#endif  // TOTEMKV_TESTS_KVSTORE_STORE_TEST_UTIL_H_

// One MvccStore (real RocksDB, no fsync) per fuzz process, in a temporary
// directory removed at exit, shared by every input of a run: ops applied by
// earlier inputs stay, so later ones meet keys, revisions, leases and
// compactions to interact with.
#ifndef TOTEMKV_FUZZ_FUZZ_STORE_H_
#define TOTEMKV_FUZZ_FUZZ_STORE_H_

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "kvstore/mvcc_store.h"

namespace totemkv::fuzz {

class FuzzStore {
 public:
  static FuzzStore& Get() {
    static FuzzStore store;
    return store;
  }
  ::kvstore::MvccStore& store() { return *store_; }
  uint64_t NextSeq() { return ++seq_; }

 private:
  FuzzStore() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "totemkv-fuzz-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    dir_ = tmpl;
    ::kvstore::StoreOptions options;
    options.sync = false;
    auto opened = ::kvstore::MvccStore::Open(dir_ + "/db", options);
    if (!opened.ok()) {
      std::fprintf(stderr, "fuzz: cannot open store: %s\n", opened.status().message().c_str());
      std::abort();
    }
    store_ = std::move(opened).value();
    // A few keys and revisions for reads, txns and compactions to meet.
    std::vector<::kvstore::Op> ops;
    for (const char* key : {"a", "b", "b/1", "b/2", "c"}) {
      ::kvstore::PutRequest put;
      put.key = key;
      put.value = std::string("v-") + key;
      ops.push_back(::kvstore::Op{{}, put});
    }
    ::kvstore::DeleteRangeRequest del;
    del.key = "c";
    ops.push_back(::kvstore::Op{{}, del});
    if (!store_->ApplyBatch(ops, ::kvstore::AppliedPosition{"fuzz", NextSeq()}).ok()) std::abort();
  }
  ~FuzzStore() {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string dir_;
  std::unique_ptr<::kvstore::MvccStore> store_;
  uint64_t seq_ = 0;
};

}  // namespace totemkv::fuzz

#endif  // TOTEMKV_FUZZ_FUZZ_STORE_H_

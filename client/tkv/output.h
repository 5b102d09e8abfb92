// tkv's two output shapes. "simple" follows etcdctl's printer (get prints
// key then value lines, put prints OK, txn prints SUCCESS/FAILURE then each
// response, ids in hex). "json" is our own stable shape for scripts: one
// object per command (one per line for watch), keys and values as plain
// JSON strings (bytes < 0x20 escaped as \u00XX; bytes >= 0x80 are passed
// through, so non-UTF-8 values are not valid JSON), ids as decimal numbers:
//   header: {"cluster_id","member_id","revision","raft_term"}
//   kv:     {"key","value","create_revision","mod_revision","version","lease"}
//   get:    {"header","kvs":[kv],"more","count"}
//   put:    {"header"[,"prev_kv"]}     del: {"header","deleted"[,"prev_kvs"]}
//   txn:    {"header","succeeded","responses":[{"put"|"range"|"delete_range":{..}}]}
//   watch:  {"header","watch_id","events":[{"type":"PUT"|"DELETE","kv"[,"prev_kv"]}]}
//   lease:  {"header","id","ttl"[,"granted_ttl","keys"]}
//   member list: {"header","members":[{"id","name","peer_urls","client_urls","is_learner"}]}
//   status: [{"endpoint","header","version","db_size","db_size_in_use","leader",
//            "is_learner","raft_term","raft_index","raft_applied_index","errors"}]
#ifndef TOTEMKV_CLIENT_TKV_OUTPUT_H_
#define TOTEMKV_CLIENT_TKV_OUTPUT_H_

#include <cstdint>
#include <string>

#include "etcd/kv.pb.h"
#include "etcd/rpc.pb.h"

namespace totemkv::tkv {

// Appends JSON text, inserting commas between members and elements.
class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(const std::string& key);
  JsonWriter& String(const std::string& value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Uint(uint64_t value);
  JsonWriter& Bool(bool value);
  const std::string& str() const { return out_; }

 private:
  void Separate();
  std::string out_;
  bool need_comma_ = false;
};

std::string JsonEscape(const std::string& s);
std::string Hex(uint64_t id);

void WriteHeader(JsonWriter& w, const etcdserverpb::ResponseHeader& h);
void WriteKv(JsonWriter& w, const mvccpb::KeyValue& kv);

std::string JsonPut(const etcdserverpb::PutResponse& r);
std::string JsonRange(const etcdserverpb::RangeResponse& r);
std::string JsonDelete(const etcdserverpb::DeleteRangeResponse& r);
std::string JsonTxn(const etcdserverpb::TxnResponse& r);
std::string JsonWatch(const etcdserverpb::WatchResponse& r);
std::string JsonMembers(const etcdserverpb::MemberListResponse& r);

// Simple (etcdctl) forms; each returns the full text including newlines.
std::string SimpleRange(const etcdserverpb::RangeResponse& r, bool print_value_only,
                        bool keys_only);
std::string SimpleTxn(const etcdserverpb::TxnResponse& r);
std::string SimpleWatch(const etcdserverpb::WatchResponse& r);
std::string SimpleMembers(const etcdserverpb::MemberListResponse& r);

}  // namespace totemkv::tkv

#endif  // TOTEMKV_CLIENT_TKV_OUTPUT_H_

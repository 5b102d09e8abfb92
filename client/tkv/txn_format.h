// etcdctl's text format for transactions, as `etcdctl txn` reads it:
// compares, a blank line, success ops, a blank line, failure ops, then a
// blank line or end of input. Compare lines look like
//   value("key") = "v"     mod("key") > "3"     version("k") != "0"
// (targets ver/version, c/create, m/mod, val/value, lease; operators
// = != < >; Go-style quoted strings). Op lines are tkv commands:
//   put KEY VALUE [--lease=ID]   get KEY [END] [--prefix] [--from-key]
//   [--limit=N] [--rev=N] [--keys-only] [--count-only]   del KEY [END]
//   [--prefix] [--from-key] [--prev-kv]
// Deviation: numeric operands may also be written unquoted.
#ifndef TOTEMKV_CLIENT_TKV_TXN_FORMAT_H_
#define TOTEMKV_CLIENT_TKV_TXN_FORMAT_H_

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "client/status.h"
#include "etcd/rpc.pb.h"

namespace totemkv::tkv {

// Splits a line into words, honouring "double" (Go escapes) and 'single'
// quotes. INVALID_ARGUMENT on an unterminated quote.
client::StatusOr<std::vector<std::string>> Argify(const std::string& line);

client::StatusOr<etcdserverpb::Compare> ParseCompare(const std::string& line);
client::StatusOr<etcdserverpb::RequestOp> ParseRequestOp(const std::string& line);

// Reads a whole transaction. When `prompts` is non-null, writes etcdctl's
// interactive prompts to it before each section.
client::StatusOr<etcdserverpb::TxnRequest> ParseTxn(std::istream& in, std::ostream* prompts);

// Parses a lease id the way etcdctl prints it: hexadecimal.
bool ParseLeaseId(const std::string& text, int64_t* id);

}  // namespace totemkv::tkv

#endif  // TOTEMKV_CLIENT_TKV_TXN_FORMAT_H_

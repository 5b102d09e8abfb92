// tkv's printers: etcdctl-style simple text and our JSON shape; see output.h.
#include "output.h"

#include <cstdio>

namespace totemkv::tkv {

void JsonWriter::Separate() {
  if (need_comma_) out_ += ',';
  need_comma_ = false;
}
JsonWriter& JsonWriter::BeginObject() {
  Separate();
  out_ += '{';
  return *this;
}
JsonWriter& JsonWriter::EndObject() {
  out_ += '}';
  need_comma_ = true;
  return *this;
}
JsonWriter& JsonWriter::BeginArray() {
  Separate();
  out_ += '[';
  return *this;
}
JsonWriter& JsonWriter::EndArray() {
  out_ += ']';
  need_comma_ = true;
  return *this;
}
JsonWriter& JsonWriter::Key(const std::string& key) {
  Separate();
  out_ += '"' + JsonEscape(key) + "\":";
  return *this;
}
JsonWriter& JsonWriter::String(const std::string& value) {
  Separate();
  out_ += '"' + JsonEscape(value) + '"';
  need_comma_ = true;
  return *this;
}
JsonWriter& JsonWriter::Int(int64_t value) {
  Separate();
  out_ += std::to_string(value);
  need_comma_ = true;
  return *this;
}
JsonWriter& JsonWriter::Uint(uint64_t value) {
  Separate();
  out_ += std::to_string(value);
  need_comma_ = true;
  return *this;
}
JsonWriter& JsonWriter::Bool(bool value) {
  Separate();
  out_ += value ? "true" : "false";
  need_comma_ = true;
  return *this;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::string Hex(uint64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(id));
  return buf;
}

void WriteHeader(JsonWriter& w, const etcdserverpb::ResponseHeader& h) {
  w.Key("header").BeginObject();
  w.Key("cluster_id").Uint(h.cluster_id());
  w.Key("member_id").Uint(h.member_id());
  w.Key("revision").Int(h.revision());
  w.Key("raft_term").Uint(h.raft_term());
  w.EndObject();
}

void WriteKv(JsonWriter& w, const mvccpb::KeyValue& kv) {
  w.BeginObject();
  w.Key("key").String(kv.key());
  w.Key("value").String(kv.value());
  w.Key("create_revision").Int(kv.create_revision());
  w.Key("mod_revision").Int(kv.mod_revision());
  w.Key("version").Int(kv.version());
  w.Key("lease").Int(kv.lease());
  w.EndObject();
}

namespace {

void WritePut(JsonWriter& w, const etcdserverpb::PutResponse& r) {
  w.BeginObject();
  WriteHeader(w, r.header());
  if (r.has_prev_kv()) {
    w.Key("prev_kv");
    WriteKv(w, r.prev_kv());
  }
  w.EndObject();
}

void WriteRange(JsonWriter& w, const etcdserverpb::RangeResponse& r) {
  w.BeginObject();
  WriteHeader(w, r.header());
  w.Key("kvs").BeginArray();
  for (const auto& kv : r.kvs()) WriteKv(w, kv);
  w.EndArray();
  w.Key("more").Bool(r.more());
  w.Key("count").Int(r.count());
  w.EndObject();
}

void WriteDelete(JsonWriter& w, const etcdserverpb::DeleteRangeResponse& r) {
  w.BeginObject();
  WriteHeader(w, r.header());
  w.Key("deleted").Int(r.deleted());
  if (r.prev_kvs_size() > 0) {
    w.Key("prev_kvs").BeginArray();
    for (const auto& kv : r.prev_kvs()) WriteKv(w, kv);
    w.EndArray();
  }
  w.EndObject();
}

}  // namespace

std::string JsonPut(const etcdserverpb::PutResponse& r) {
  JsonWriter w;
  WritePut(w, r);
  return w.str();
}
std::string JsonRange(const etcdserverpb::RangeResponse& r) {
  JsonWriter w;
  WriteRange(w, r);
  return w.str();
}
std::string JsonDelete(const etcdserverpb::DeleteRangeResponse& r) {
  JsonWriter w;
  WriteDelete(w, r);
  return w.str();
}

std::string JsonTxn(const etcdserverpb::TxnResponse& r) {
  JsonWriter w;
  w.BeginObject();
  WriteHeader(w, r.header());
  w.Key("succeeded").Bool(r.succeeded());
  w.Key("responses").BeginArray();
  for (const auto& op : r.responses()) {
    w.BeginObject();
    if (op.has_response_put()) {
      w.Key("put");
      WritePut(w, op.response_put());
    } else if (op.has_response_range()) {
      w.Key("range");
      WriteRange(w, op.response_range());
    } else if (op.has_response_delete_range()) {
      w.Key("delete_range");
      WriteDelete(w, op.response_delete_range());
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.str();
}

std::string JsonWatch(const etcdserverpb::WatchResponse& r) {
  JsonWriter w;
  w.BeginObject();
  WriteHeader(w, r.header());
  w.Key("watch_id").Int(r.watch_id());
  w.Key("events").BeginArray();
  for (const auto& ev : r.events()) {
    w.BeginObject();
    w.Key("type").String(ev.type() == mvccpb::Event::DELETE ? "DELETE" : "PUT");
    w.Key("kv");
    WriteKv(w, ev.kv());
    if (ev.has_prev_kv()) {
      w.Key("prev_kv");
      WriteKv(w, ev.prev_kv());
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.str();
}

std::string JsonMembers(const etcdserverpb::MemberListResponse& r) {
  JsonWriter w;
  w.BeginObject();
  WriteHeader(w, r.header());
  w.Key("members").BeginArray();
  for (const auto& m : r.members()) {
    w.BeginObject();
    w.Key("id").Uint(m.id());
    w.Key("name").String(m.name());
    w.Key("peer_urls").BeginArray();
    for (const auto& u : m.peerurls()) w.String(u);
    w.EndArray();
    w.Key("client_urls").BeginArray();
    for (const auto& u : m.clienturls()) w.String(u);
    w.EndArray();
    w.Key("is_learner").Bool(m.islearner());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.str();
}

std::string SimpleRange(const etcdserverpb::RangeResponse& r, bool print_value_only,
                        bool keys_only) {
  std::string out;
  for (const auto& kv : r.kvs()) {
    if (!print_value_only) out += kv.key() + "\n";
    if (!keys_only) out += kv.value() + "\n";
  }
  return out;
}

std::string SimpleTxn(const etcdserverpb::TxnResponse& r) {
  std::string out = r.succeeded() ? "SUCCESS\n" : "FAILURE\n";
  for (const auto& op : r.responses()) {
    out += "\n";
    if (op.has_response_put()) {
      out += "OK\n";
    } else if (op.has_response_range()) {
      out += SimpleRange(op.response_range(), false, false);
    } else if (op.has_response_delete_range()) {
      out += std::to_string(op.response_delete_range().deleted()) + "\n";
    }
  }
  return out;
}

std::string SimpleWatch(const etcdserverpb::WatchResponse& r) {
  std::string out;
  for (const auto& ev : r.events()) {
    out += ev.type() == mvccpb::Event::DELETE ? "DELETE\n" : "PUT\n";
    out += ev.kv().key() + "\n" + ev.kv().value() + "\n";
  }
  return out;
}

std::string SimpleMembers(const etcdserverpb::MemberListResponse& r) {
  std::string out;
  for (const auto& m : r.members()) {
    std::string peers, clients;
    for (const auto& u : m.peerurls()) peers += (peers.empty() ? "" : ",") + u;
    for (const auto& u : m.clienturls()) clients += (clients.empty() ? "" : ",") + u;
    out += Hex(m.id()) + ", " + (m.name().empty() ? "unstarted" : "started") + ", " + m.name() +
           ", " + peers + ", " + clients + ", " + (m.islearner() ? "true" : "false") + "\n";
  }
  return out;
}

}  // namespace totemkv::tkv

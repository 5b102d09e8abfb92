// tkv: the totemkv command-line client, speaking the etcd v3 API (so it
// works against totemkvd and etcd alike). Commands and output follow
// etcdctl: `tkv put k v` prints OK, `tkv get k` prints key and value lines,
// `-w json` prints the stable JSON shape documented in output.h. Errors
// print one "Error: ..." line on stderr and exit 1; bad usage prints the
// usage text and exits 2. Deviations from etcdctl, on purpose: `get
// --keys-only` prints only keys (no blank value lines), `status` prints a
// table of every endpoint, and error lines name the gRPC code.
#include <openssl/evp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "admin_output.h"
#include "client/client.h"
#include "output.h"
#include "txn_format.h"

namespace totemkv::tkv {
namespace {

using client::Client;
using client::ClientOptions;
using client::Status;

constexpr char kUsage[] = R"(Usage: tkv [global flags] COMMAND [args] [flags]

Commands:
  put KEY [VALUE] [--lease=ID] [--prev-kv]   store VALUE (read from stdin if omitted)
  get KEY [RANGE_END] [--prefix] [--from-key] [--rev=N] [--keys-only]
      [--count-only] [--limit=N] [--serializable] [--print-value-only]
  del KEY [RANGE_END] [--prefix] [--from-key] [--prev-kv]
  txn [-i]                     read compares / success / failure ops from stdin
                               (etcdctl's txn format), prompting on a terminal
  watch KEY [RANGE_END] [--prefix] [--rev=N] [--prev-kv]
                               print events until interrupted (Ctrl-C)
  lease grant TTL | revoke ID | keep-alive ID [--once] | timetolive ID [--keys]
  member list
  status                       cluster health: a row per endpoint (reachable, primary
                               or the reason not, ring members, revision, global
                               index); exit 1 if one is unreachable (also: endpoint status)
  ring                         totemkvd only: the answering node's ring (members,
                               state, primary, token rotation time)
  configurations [--limit=N]   totemkvd only: the node's configuration changes,
                               oldest first (the newest N)
  counters                     totemkvd only: the node's Totem and store counters
  snapshot save FILE           write a backup of the first endpoint that answers
                               (Maintenance.Snapshot; checks its SHA-256); restore
                               it with `totemkvd --restore-snapshot FILE`

Global flags:
  --endpoints=a,b,c            gRPC endpoints (default $TKV_ENDPOINTS or 127.0.0.1:2379)
  -w, --write-out=simple|json  output format (default simple)
  --dial-timeout=2s            time to connect to one endpoint
  --command-timeout=5s         time for a whole command, failovers included
  --cacert=PATH                TLS: CA certificate(s) that sign the server's (PEM)
  --cert=PATH --key=PATH       TLS client certificate and its key (PEM)
                               TLS is used with any of these or https:// endpoints
  -h, --help                   this text
Lease ids are hexadecimal, as etcdctl prints them.
)";

// Flags that take a value; every other flag is boolean.
const std::set<std::string> kValueFlags = {
    "endpoints", "write-out", "dial-timeout", "command-timeout", "lease", "rev", "limit",
    "cacert",    "cert",      "key"};
const std::set<std::string> kBoolFlags = {"prefix",     "from-key",         "keys-only",
                                          "count-only", "serializable",     "print-value-only",
                                          "once",       "keys",             "prev-kv",
                                          "interactive", "help"};

struct UsageError {
  std::string message;
};

// A file named by a flag cannot be used: "Error: ..." and exit 1.
struct FileError {
  std::string message;
};

std::string ReadPemFile(const std::string& flag, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    throw FileError{"--" + flag + ": cannot open " + path + ": " + std::strerror(errno)};
  std::string text;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0 && text.size() <= (1 << 20))
    text.append(buf, n);
  std::fclose(f);
  if (text.find("-----BEGIN ") == std::string::npos) {
    throw FileError{"--" + flag + ": " + path + " holds no PEM block"};
  }
  return text;
}

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;
  bool Has(const std::string& f) const { return flags.count(f) > 0; }
  std::string Get(const std::string& f, const std::string& def = "") const {
    auto it = flags.find(f);
    return it == flags.end() ? def : it->second;
  }
};

Args ParseArgs(int argc, char** argv) {
  Args a;
  bool only_positional = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (only_positional || arg.size() < 2 || arg[0] != '-') {
      a.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    std::string name, value;
    bool has_value = false;
    if (arg == "-w") {
      name = "write-out";
    } else if (arg == "-h") {
      name = "help";
    } else if (arg == "-i") {
      name = "interactive";
    } else if (arg.rfind("--", 0) == 0) {
      name = arg.substr(2);
      const size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
    } else {
      throw UsageError{"unknown flag " + arg};
    }
    if (kValueFlags.count(name) > 0) {
      if (!has_value) {
        if (i + 1 >= argc) throw UsageError{"flag --" + name + " needs a value"};
        value = argv[++i];
      }
    } else if (kBoolFlags.count(name) > 0) {
      if (has_value) throw UsageError{"flag --" + name + " takes no value"};
    } else {
      throw UsageError{"unknown flag --" + name};
    }
    a.flags[name] = value;
  }
  return a;
}

std::chrono::milliseconds ParseDuration(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  const std::string unit = end != nullptr ? end : "";
  double ms = -1;
  if (errno == 0 && end != text.c_str()) {
    if (unit == "ms") ms = v;
    if (unit == "s" || unit.empty()) ms = v * 1000;
    if (unit == "m") ms = v * 60000;
  }
  if (ms <= 0) throw UsageError{"bad duration for --" + flag + ": \"" + text + "\" (e.g. 5s, 500ms)"};
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

int64_t ParseNumber(const std::string& what, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || errno != 0 || *end != '\0') {
    throw UsageError{what + " must be a number, got \"" + text + "\""};
  }
  return v;
}

int64_t ParseLease(const std::string& text) {
  int64_t id = 0;
  if (!ParseLeaseId(text, &id)) throw UsageError{"bad lease id \"" + text + "\" (hexadecimal)"};
  return id;
}

sigset_t InterruptSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

int Fail(const Status& s) {
  std::cerr << "Error: " << s.message() << " (" << client::StatusCodeName(s.code()) << ")"
            << std::endl;
  return 1;
}

void Need(const Args& a, size_t min, size_t max, const char* what) {
  if (a.positional.size() < min || a.positional.size() > max) {
    throw UsageError{std::string("expected: ") + what};
  }
}

class Tool {
 public:
  Tool(const Args& args, Client& client, bool json) : a_(args), c_(client), json_(json) {}

  int Run() {
    const std::string& cmd = a_.positional[0];
    if (cmd == "put") return Put();
    if (cmd == "get") return Get();
    if (cmd == "del" || cmd == "delete") return Del();
    if (cmd == "txn") return Txn();
    if (cmd == "watch") return Watch();
    if (cmd == "lease") return Lease();
    if (cmd == "member" || cmd == "members") {
      if (cmd == "member") Need(a_, 2, 2, "member list");
      if (cmd == "member" && a_.positional[1] != "list") throw UsageError{"expected: member list"};
      return Members();
    }
    if (cmd == "status") return StatusTable();
    if (cmd == "ring") return Ring();
    if (cmd == "configurations" || cmd == "configs") return Configurations();
    if (cmd == "counters") return Counters();
    if (cmd == "snapshot") return Snapshot();
    if (cmd == "endpoint") {
      Need(a_, 2, 2, "endpoint status");
      if (a_.positional[1] != "status") throw UsageError{"expected: endpoint status"};
      return StatusTable();
    }
    throw UsageError{"unknown command \"" + cmd + "\""};
  }

 private:
  int Put() {
    Need(a_, 2, 3, "put KEY [VALUE]");
    std::string value;
    if (a_.positional.size() == 3) {
      value = a_.positional[2];
    } else {
      if (::isatty(0)) throw UsageError{"put needs a VALUE (or the value on stdin)"};
      char buf[4096];
      size_t n = 0;
      while ((n = std::fread(buf, 1, sizeof(buf), stdin)) > 0) value.append(buf, n);
    }
    client::PutOptions o;
    if (a_.Has("lease")) o.lease = ParseLease(a_.Get("lease"));
    o.prev_kv = a_.Has("prev-kv");
    auto r = c_.Put(a_.positional[1], value, o);
    if (!r.ok()) return Fail(r.status());
    if (json_) {
      std::cout << JsonPut(*r) << "\n";
    } else {
      std::cout << "OK\n";
      if (r->has_prev_kv()) std::cout << r->prev_kv().key() << "\n" << r->prev_kv().value() << "\n";
    }
    return 0;
  }

  int Get() {
    Need(a_, 2, 3, "get KEY [RANGE_END]");
    client::GetOptions o;
    if (a_.positional.size() == 3) o.range_end = a_.positional[2];
    o.prefix = a_.Has("prefix");
    o.from_key = a_.Has("from-key");
    if (o.prefix && (o.from_key || !o.range_end.empty())) {
      throw UsageError{"--prefix cannot be combined with --from-key or RANGE_END"};
    }
    if (a_.Has("rev")) o.revision = ParseNumber("--rev", a_.Get("rev"));
    if (a_.Has("limit")) o.limit = ParseNumber("--limit", a_.Get("limit"));
    o.keys_only = a_.Has("keys-only");
    o.count_only = a_.Has("count-only");
    o.serializable = a_.Has("serializable");
    auto r = c_.Get(a_.positional[1], o);
    if (!r.ok()) return Fail(r.status());
    if (json_) {
      std::cout << JsonRange(*r) << "\n";
    } else if (o.count_only) {
      std::cout << r->count() << "\n";
    } else {
      std::cout << SimpleRange(*r, a_.Has("print-value-only"), o.keys_only);
    }
    return 0;
  }

  int Del() {
    Need(a_, 2, 3, "del KEY [RANGE_END]");
    client::DeleteOptions o;
    if (a_.positional.size() == 3) o.range_end = a_.positional[2];
    o.prefix = a_.Has("prefix");
    o.from_key = a_.Has("from-key");
    o.prev_kv = a_.Has("prev-kv");
    auto r = c_.Delete(a_.positional[1], o);
    if (!r.ok()) return Fail(r.status());
    if (json_) {
      std::cout << JsonDelete(*r) << "\n";
    } else {
      std::cout << r->deleted() << "\n";
      for (const auto& kv : r->prev_kvs()) std::cout << kv.key() << "\n" << kv.value() << "\n";
    }
    return 0;
  }

  int Txn() {
    Need(a_, 1, 1, "txn (reads the transaction from stdin)");
    const bool interactive = a_.Has("interactive") || ::isatty(0);
    auto req = ParseTxn(std::cin, interactive ? &std::cout : nullptr);
    if (!req.ok()) return Fail(req.status());
    auto r = c_.Txn(*req);
    if (!r.ok()) return Fail(r.status());
    std::cout << (json_ ? JsonTxn(*r) + "\n" : SimpleTxn(*r));
    return 0;
  }

  int Watch() {
    Need(a_, 2, 3, "watch KEY [RANGE_END]");
    client::WatchOptions o;
    if (a_.positional.size() == 3) o.range_end = a_.positional[2];
    o.prefix = a_.Has("prefix");
    o.prev_kv = a_.Has("prev-kv");
    if (a_.Has("rev")) o.start_revision = ParseNumber("--rev", a_.Get("rev"));
    // SIGINT/SIGTERM (blocked in every thread by Main) are taken by a
    // thread that cancels the watch, so an interrupted watch ends cleanly
    // with exit code 0.
    const sigset_t set = InterruptSignals();
    auto w = c_.Watch(a_.positional[1], o);
    if (!w.ok()) return Fail(w.status());
    client::Watcher* watcher = w.value().get();
    std::thread waiter([set, watcher] {
      int sig = 0;
      sigwait(&set, &sig);
      watcher->Cancel();
    });
    waiter.detach();
    for (;;) {
      auto r = watcher->Next();
      if (!r.ok()) {
        if (r.status().code() == client::StatusCode::CANCELLED) return 0;
        return Fail(r.status());
      }
      std::cout << (json_ ? JsonWatch(*r) + "\n" : SimpleWatch(*r)) << std::flush;
    }
  }

  int Lease() {
    if (a_.positional.size() < 2) throw UsageError{"expected: lease grant|revoke|keep-alive|timetolive"};
    const std::string& sub = a_.positional[1];
    if (sub == "grant") {
      Need(a_, 3, 3, "lease grant TTL");
      auto r = c_.LeaseGrant(ParseNumber("TTL", a_.positional[2]));
      if (!r.ok()) return Fail(r.status());
      if (json_) {
        std::cout << LeaseJson(r->header(), r->id(), r->ttl()) << "\n";
      } else {
        std::cout << "lease " << Hex(static_cast<uint64_t>(r->id())) << " granted with TTL("
                  << r->ttl() << "s)\n";
      }
      return 0;
    }
    if (sub == "revoke") {
      Need(a_, 3, 3, "lease revoke ID");
      const int64_t id = ParseLease(a_.positional[2]);
      auto r = c_.LeaseRevoke(id);
      if (!r.ok()) return Fail(r.status());
      if (json_) {
        std::cout << LeaseJson(r->header(), id, 0) << "\n";
      } else {
        std::cout << "lease " << Hex(static_cast<uint64_t>(id)) << " revoked\n";
      }
      return 0;
    }
    if (sub == "keep-alive" || sub == "keepalive") {
      Need(a_, 3, 3, "lease keep-alive ID");
      const int64_t id = ParseLease(a_.positional[2]);
      for (;;) {
        auto r = c_.LeaseKeepAliveOnce(id);
        if (!r.ok()) return Fail(r.status());
        if (r->ttl() <= 0) {
          return Fail(Status(client::StatusCode::NOT_FOUND,
                             "lease " + Hex(static_cast<uint64_t>(id)) + " expired or revoked"));
        }
        if (json_) {
          std::cout << LeaseJson(r->header(), id, r->ttl()) << std::endl;
        } else {
          std::cout << "lease " << Hex(static_cast<uint64_t>(id)) << " keepalived with TTL("
                    << r->ttl() << ")" << std::endl;
        }
        if (a_.Has("once")) return 0;
        std::this_thread::sleep_for(std::chrono::milliseconds(std::max<int64_t>(500, r->ttl() * 1000 / 3)));
      }
    }
    if (sub == "timetolive" || sub == "ttl") {
      Need(a_, 3, 3, "lease timetolive ID");
      const int64_t id = ParseLease(a_.positional[2]);
      auto r = c_.LeaseTimeToLive(id, a_.Has("keys"));
      if (!r.ok()) return Fail(r.status());
      if (json_) {
        JsonWriter w;
        w.BeginObject();
        WriteHeader(w, r->header());
        w.Key("id").Int(r->id()).Key("ttl").Int(r->ttl()).Key("granted_ttl").Int(r->grantedttl());
        w.Key("keys").BeginArray();
        for (const auto& k : r->keys()) w.String(k);
        w.EndArray().EndObject();
        std::cout << w.str() << "\n";
      } else if (r->ttl() == -1) {
        std::cout << "lease " << Hex(static_cast<uint64_t>(id)) << " already expired\n";
      } else {
        std::cout << "lease " << Hex(static_cast<uint64_t>(id)) << " granted with TTL("
                  << r->grantedttl() << "s), remaining(" << r->ttl() << "s)";
        if (a_.Has("keys")) {
          std::string keys;
          for (const auto& k : r->keys()) keys += (keys.empty() ? "" : " ") + k;
          std::cout << ", attached keys([" << keys << "])";
        }
        std::cout << "\n";
      }
      return 0;
    }
    throw UsageError{"unknown lease command \"" + sub + "\""};
  }

  static std::string LeaseJson(const etcdserverpb::ResponseHeader& h, int64_t id, int64_t ttl) {
    JsonWriter w;
    w.BeginObject();
    WriteHeader(w, h);
    w.Key("id").Int(id).Key("ttl").Int(ttl).EndObject();
    return w.str();
  }

  int Members() {
    auto r = c_.MemberList();
    if (!r.ok()) return Fail(r.status());
    std::cout << (json_ ? JsonMembers(*r) + "\n" : SimpleMembers(*r));
    return 0;
  }

  int Ring() {
    Need(a_, 1, 1, "ring");
    auto r = c_.AdminGetRing();
    if (!r.ok()) return Fail(r.status());
    std::cout << (json_ ? JsonRing(*r) + "\n" : SimpleRing(*r));
    return 0;
  }

  int Configurations() {
    Need(a_, 1, 1, "configurations [--limit=N]");
    int64_t limit = 0;
    if (a_.Has("limit")) limit = ParseNumber("--limit", a_.Get("limit"));
    if (limit < 0 || limit > UINT32_MAX) throw UsageError{"--limit must be in [0, 4294967295]"};
    auto r = c_.AdminListConfigurations(static_cast<uint32_t>(limit));
    if (!r.ok()) return Fail(r.status());
    std::cout << (json_ ? JsonConfigurations(*r) + "\n" : SimpleConfigurations(*r));
    return 0;
  }

  // Streams into FILE.part and renames it to FILE only when the whole
  // stream arrived and its trailing SHA-256 (snapshot_file.h's layout, as
  // etcd's) matches, so FILE is never a partial backup.
  int Snapshot() {
    Need(a_, 3, 3, "snapshot save FILE");
    if (a_.positional[1] == "restore") {
      throw UsageError{"restoring needs the server's store: totemkvd --restore-snapshot FILE "
                       "--data-dir DIR"};
    }
    if (a_.positional[1] != "save") throw UsageError{"expected: snapshot save FILE"};
    const std::string path = a_.positional[2];
    const std::string part = path + ".part";
    std::FILE* f = std::fopen(part.c_str(), "wb");
    const auto io_error = [](const std::string& what) {
      return Status(client::StatusCode::UNKNOWN, what + ": " + std::strerror(errno));
    };
    if (f == nullptr) return Fail(io_error("cannot create " + part));
    ::fchmod(::fileno(f), 0600);  // a backup holds every value: owner only, as etcdctl
    EVP_MD_CTX* sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(sha, EVP_sha256(), nullptr);
    std::string tail;  // the last 32 bytes seen
    uint64_t bytes = 0;
    int64_t revision = 0;
    bool write_failed = false;
    Status s = c_.Snapshot([&](const etcdserverpb::SnapshotResponse& r) {
      if (r.has_header() && revision == 0) revision = r.header().revision();
      const std::string& blob = r.blob();
      if (std::fwrite(blob.data(), 1, blob.size(), f) != blob.size()) {
        write_failed = true;
        return false;
      }
      bytes += blob.size();
      // Hash everything but the final 32 bytes: keep them back in `tail`.
      tail += blob;
      if (tail.size() > 32) {
        EVP_DigestUpdate(sha, tail.data(), tail.size() - 32);
        tail.erase(0, tail.size() - 32);
      }
      return true;
    });
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_DigestFinal_ex(sha, md, &md_len);
    EVP_MD_CTX_free(sha);
    const bool closed = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
    std::fclose(f);
    auto fail = [&](const Status& st) {
      std::remove(part.c_str());
      return Fail(st);
    };
    if (write_failed || !closed) {
      return fail(io_error("cannot write " + part));
    }
    if (!s.ok()) return fail(s);
    if (bytes % 512 != 32 || tail.size() != 32 || md_len != 32 ||
        std::memcmp(md, tail.data(), 32) != 0) {
      return fail(Status(client::StatusCode::DATA_LOSS,
                         "snapshot of " + std::to_string(bytes) +
                             " bytes has no valid trailing SHA-256 (incomplete or corrupt)"));
    }
    if (std::rename(part.c_str(), path.c_str()) != 0) {
      return fail(io_error("cannot rename " + part));
    }
    std::cout << "Snapshot saved at " << path << " (" << bytes << " bytes, revision " << revision
              << ")\n";
    return 0;
  }

  int Counters() {
    Need(a_, 1, 1, "counters");
    auto r = c_.AdminGetCounters();
    if (!r.ok()) return Fail(r.status());
    std::cout << (json_ ? JsonCounters(*r) + "\n" : SimpleCounters(*r));
    return 0;
  }

  // One row per endpoint, reachable or not: whether it serves (primary,
  // else the reason from Maintenance.Status errors), its ring members
  // (totemkvd's Admin.GetRing; "-" against etcd), revision and global
  // index (raft applied index). Exit 1 when an endpoint is unreachable.
  int StatusTable() {
    std::vector<std::vector<std::string>> rows = {
        {"ENDPOINT", "ID", "REACHABLE", "PRIMARY", "RING MEMBERS", "RING STATE", "REVISION",
         "GLOBAL INDEX", "RAFT TERM", "DB SIZE", "VERSION", "REASON"}};
    JsonWriter w;
    w.BeginArray();
    int failures = 0;
    for (const std::string& ep : c_.options().endpoints) {
      auto r = c_.ServerStatus(ep);
      if (!r.ok()) {
        ++failures;
        Fail(r.status());  // the message names the endpoint
        rows.push_back(
            {ep, "-", "false", "-", "-", "-", "-", "-", "-", "-", "-", r.status().message()});
        w.BeginObject();
        w.Key("endpoint").String(ep).Key("reachable").Bool(false);
        w.Key("error").String(r.status().message()).EndObject();
        continue;
      }
      std::string errors;
      for (const auto& e : r->errors()) errors += (errors.empty() ? "" : "; ") + e;
      // Admin.GetRing is totemkvd's; etcd answers UNIMPLEMENTED.
      auto ring = c_.AdminGetRing(ep);
      const bool primary = ring.ok() ? ring->primary() : r->errors().empty();
      std::string members = "-";
      std::string state = "-";
      if (ring.ok()) {
        members.clear();
        for (uint32_t m : ring->members())
          members += (members.empty() ? "" : ",") + std::to_string(m);
        state = RingStateName(ring->state());
      }
      rows.push_back({ep, Hex(r->header().member_id()), "true", primary ? "true" : "false", members,
                      state, std::to_string(r->header().revision()),
                      std::to_string(r->raftappliedindex()), std::to_string(r->raftterm()),
                      std::to_string(r->dbsize()), r->version(), errors});
      w.BeginObject();
      w.Key("endpoint").String(ep);
      WriteHeader(w, r->header());
      w.Key("version").String(r->version());
      w.Key("db_size").Int(r->dbsize()).Key("db_size_in_use").Int(r->dbsizeinuse());
      w.Key("leader").Uint(r->leader()).Key("is_learner").Bool(r->islearner());
      w.Key("raft_term").Uint(r->raftterm()).Key("raft_index").Uint(r->raftindex());
      w.Key("raft_applied_index").Uint(r->raftappliedindex());
      w.Key("errors").BeginArray();
      for (const auto& e : r->errors()) w.String(e);
      w.EndArray();
      w.Key("reachable").Bool(true).Key("primary").Bool(primary);
      if (ring.ok()) {
        w.Key("ring_members").BeginArray();
        for (uint32_t m : ring->members()) w.Uint(m);
        w.EndArray();
        w.Key("ring_state").String(state).Key("token_rotation_us").Uint(ring->token_rotation_us());
      }
      w.EndObject();
    }
    w.EndArray();
    if (json_) {
      std::cout << w.str() << "\n";
    } else {
      std::vector<size_t> width(rows[0].size(), 0);
      for (const auto& row : rows) {
        for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
      }
      for (const auto& row : rows) {
        std::string line;
        for (size_t i = 0; i < row.size(); ++i) {
          line += row[i] + (i + 1 < row.size() ? std::string(width[i] - row[i].size() + 2, ' ') : "");
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        std::cout << line << "\n";
      }
    }
    return failures > 0 ? 1 : 0;
  }

  const Args& a_;
  Client& c_;
  bool json_;
};

int Main(int argc, char** argv) {
  try {
    const Args a = ParseArgs(argc, argv);
    if (a.Has("help")) {
      std::cout << kUsage;
      return 0;
    }
    if (a.positional.empty()) throw UsageError{"no command given"};
    if (a.positional[0] == "watch") {
      // Before any gRPC thread exists, so every thread inherits the mask;
      // SIG_DFL first because a shell may start us with SIGINT ignored.
      const sigset_t set = InterruptSignals();
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      pthread_sigmask(SIG_BLOCK, &set, nullptr);
    }
    ClientOptions options;
    const char* env = std::getenv("TKV_ENDPOINTS");
    std::string endpoints = a.Get("endpoints", env != nullptr ? env : "127.0.0.1:2379");
    options.endpoints = client::ParseEndpoints(endpoints);
    if (options.endpoints.empty()) throw UsageError{"--endpoints is empty"};
    options.tls = endpoints.find("https://") != std::string::npos || a.Has("cacert") ||
                  a.Has("cert") || a.Has("key");
    if (a.Has("cert") != a.Has("key")) throw UsageError{"--cert and --key go together"};
    if (a.Has("cacert")) options.tls_ca_pem = ReadPemFile("cacert", a.Get("cacert"));
    if (a.Has("cert")) options.tls_cert_pem = ReadPemFile("cert", a.Get("cert"));
    if (a.Has("key")) options.tls_key_pem = ReadPemFile("key", a.Get("key"));
    if (a.Has("dial-timeout")) options.dial_timeout = ParseDuration("dial-timeout", a.Get("dial-timeout"));
    if (a.Has("command-timeout")) {
      options.command_timeout = ParseDuration("command-timeout", a.Get("command-timeout"));
    }
    const std::string out = a.Get("write-out", "simple");
    if (out != "simple" && out != "json") throw UsageError{"-w must be simple or json, got \"" + out + "\""};
    Client client(options);
    Tool tool(a, client, out == "json");
    return tool.Run();
  } catch (const UsageError& e) {
    std::cerr << "tkv: " << e.message << "\n\n" << kUsage;
    return 2;
  } catch (const FileError& e) {
    std::cerr << "Error: " << e.message << std::endl;
    return 1;
  }
}

}  // namespace
}  // namespace totemkv::tkv

int main(int argc, char** argv) { return totemkv::tkv::Main(argc, argv); }

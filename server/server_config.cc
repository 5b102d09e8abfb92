// Configuration parsing for totemkvd (see server_config.h for the formats
// and the precedence of flags, environment and config file). One table,
// kFlags, lists every setting: the usage text, the environment variable
// names and the config file keys all come from it. Every error names the
// flag and the offending text (and the file line or variable it came
// from), so a typo in a long --initial-cluster list is easy to find.
#include "server_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string_view>

namespace totemkv::server {
namespace {

using totem::InvalidArgument;
using totem::Status;
using totem::StatusOr;

constexpr char kEnvPrefix[] = "TOTEMKVD_";
constexpr size_t kMaxConfigFileBytes = 1 << 20;

// Every setting, by flag name without "--". `arg` names the value in the
// usage text; `help` may span lines ('\n').
struct FlagSpec {
  const char* name;
  const char* arg;
  const char* help;
};

const std::vector<FlagSpec>& Flags() {
  static const std::vector<FlagSpec> kFlags = {
      {"config-file", "PATH", "YAML file of settings (keys = flag names, see below)"},
      {"name", "NAME", "member name (default: default)"},
      {"data-dir", "DIR", "data folder (default: ./NAME.totemkv)"},
      {"listen-client-urls", "URL,...",
       "gRPC (etcd v3 API + admin) listen URLs, http://HOST:PORT,\n"
       "https://HOST:PORT (TLS: needs --client-cert-file and\n"
       "--client-key-file) or unix://PATH (a Unix socket)\n"
       "(default: http://127.0.0.1:2379)"},
      {"client-cert-file", "PATH",
       "PEM server certificate (chain) for https:// client URLs\n"
       "(etcd: --cert-file)"},
      {"client-key-file", "PATH", "PEM private key of --client-cert-file (etcd: --key-file)"},
      {"client-trusted-ca-file", "PATH",
       "PEM CA certificates that sign client certificates (etcd:\n"
       "--trusted-ca-file)"},
      {"client-cert-auth", "BOOL",
       "require a client certificate signed by --client-trusted-ca-file\n"
       "on https:// client URLs (etcd: --client-cert-auth; default: false)"},
      {"listen-metrics-urls", "URL,...",
       "serve Prometheus metrics at http://HOST:PORT/metrics (default:\n"
       "none)"},
      {"initial-cluster", "LIST",
       "NAME=ID@HOST:PORT[/RING],... : every member's name, Totem node id\n"
       "and Totem UDP address on ring RING (default 1); a member listed\n"
       "on two rings is a gateway joining them (default:\n"
       "NAME=1@127.0.0.1:2380, a single node)"},
      {"initial-cluster-client-urls", "LIST",
       "NAME=URL[;URL...],... : client URLs MemberList reports"},
      {"node-id", "ID", "this member's Totem node id (default: from --name)"},
      {"key-file", "PATH",
       "Totem cluster key (totem-keygen); required for several members,\n"
       "generated in DIR for one"},
      {"sync", "BOOL", "fsync once per applied batch (default: true)"},
      {"restore-snapshot", "FILE",
       "create --data-dir's store from a backup (Maintenance.Snapshot,\n"
       "`tkv snapshot save`) and exit; the data dir must hold no store"},
      {"max-watches", "N", "watches open on this member at once (default: 10000)"},
      {"replication-log-ops", "N",
       "ops kept in the op log for catching members up; a member further\n"
       "behind is rebuilt from a snapshot (default: 50000)"},
      {"watch-progress-notify-interval-ms", "MS",
       "progress notifications to watches that asked for them (default:\n"
       "600000, etcd's 10 minutes)"},
      {"totem-transport", "MODE",
       "unicast (a datagram per peer) or multicast (one group) for data\n"
       "frames; the token is always unicast (default: unicast)"},
      {"totem-mcast-addr", "ADDR", "multicast group, numeric IPv4 (default: 239.192.77.1)"},
      {"totem-mcast-port", "PORT", "multicast group port (required with multicast)"},
      {"totem-mcast-interface", "ADDR", "local interface for the group (default: 0.0.0.0)"},
      {"totem-token-timeout-ms", "MS",
       "no token this long: the ring is broken, re-form it (default: 50,\n"
       "plus 5 per member beyond three)"},
      {"totem-join-timeout-ms", "MS", "join message resend interval (default: 10)"},
      {"totem-consensus-timeout-ms", "MS",
       "members not agreeing on a membership this long are declared\n"
       "failed (default: 60)"},
      {"totem-merge-timeout-ms", "MS",
       "an idle representative announces its ring this often so partitions\n"
       "remerge (default: 100)"},
      {"totem-window-size", "N", "frames sent by all members per token rotation (default: 256)"},
      {"totem-max-messages", "N", "frames sent by one member per token visit (default: 64)"},
      {"totem-packing", "BOOL", "pack several small messages per frame (default: true)"},
      {"totem-encryption", "BOOL",
       "encrypt ring traffic with AES-256-GCM (key derived from the\n"
       "cluster key); every member must agree (default: false)"},
      {"log-format", "FORMAT", "text (key=value) or json, one event per line (default: text)"},
      {"log-level", "LEVEL", "debug, info, warn or error (default: info)"},
  };
  return kFlags;
}

bool IsFlag(const std::string& name) {
  for (const FlagSpec& f : Flags()) {
    if (name == f.name) return true;
  }
  return false;
}

std::string EnvName(const std::string& flag) {
  std::string env = kEnvPrefix;
  for (char ch : flag) env += ch == '-' ? '_' : static_cast<char>(std::toupper(ch));
  return env;
}

std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t pos = text.find(sep, start);
    out.push_back(text.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return out;
}

template <typename T>
bool ParseUnsigned(std::string_view s, T max, T* out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v > max) return false;
  *out = static_cast<T>(v);
  return true;
}

bool ParseBool(const std::string& s, bool* out) {
  if (s == "true" || s == "1" || s == "yes" || s == "on") {
    *out = true;
    return true;
  }
  if (s == "false" || s == "0" || s == "no" || s == "off") {
    *out = false;
    return true;
  }
  return false;
}

bool IsIpv4(const std::string& host) {
  in_addr a{};
  return ::inet_pton(AF_INET, host.c_str(), &a) == 1;
}

// A setting's value and where it came from ("" = the command line).
struct Setting {
  std::string value;
  std::string origin;
};

// Parses one config file value (after "key:" and blanks). Returns false
// with `why` set when malformed.
bool ParseYamlValue(std::string_view v, std::string* out, std::string* why) {
  const auto rest_ok = [](std::string_view rest) {
    const size_t p = rest.find_first_not_of(" \t");
    return p == std::string_view::npos || rest[p] == '#';
  };
  out->clear();
  if (v.empty() || v[0] == '#') return true;  // no value, or only a comment
  if (v[0] == '"') {
    for (size_t i = 1; i < v.size(); ++i) {
      const char ch = v[i];
      if (ch == '"') {
        if (!rest_ok(v.substr(i + 1))) {
          *why = "text after the closing quote";
          return false;
        }
        return true;
      }
      if (ch != '\\') {
        *out += ch;
        continue;
      }
      if (++i >= v.size()) break;
      switch (v[i]) {
        case '\\':
          *out += '\\';
          break;
        case '"':
          *out += '"';
          break;
        case 'n':
          *out += '\n';
          break;
        case 't':
          *out += '\t';
          break;
        default:
          *why = std::string("unsupported escape \\") + v[i];
          return false;
      }
    }
    *why = "unterminated double-quoted string";
    return false;
  }
  if (v[0] == '\'') {
    for (size_t i = 1; i < v.size(); ++i) {
      if (v[i] != '\'') {
        *out += v[i];
      } else if (i + 1 < v.size() && v[i + 1] == '\'') {
        *out += '\'';
        ++i;
      } else {
        if (!rest_ok(v.substr(i + 1))) {
          *why = "text after the closing quote";
          return false;
        }
        return true;
      }
    }
    *why = "unterminated single-quoted string";
    return false;
  }
  if (std::string_view("[]{}&*!|>%@`").find(v[0]) != std::string_view::npos) {
    *why = std::string("unsupported YAML ('") + v[0] +
           "' starts a flow collection, anchor, alias, tag or block scalar); quote the value";
    return false;
  }
  // A plain scalar ends at a comment (" #") or the end of the line.
  size_t end = v.size();
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] == '#' && (v[i - 1] == ' ' || v[i - 1] == '\t')) {
      end = i;
      break;
    }
  }
  std::string_view plain = v.substr(0, end);
  while (!plain.empty() && (plain.back() == ' ' || plain.back() == '\t')) plain.remove_suffix(1);
  *out = std::string(plain);
  return true;
}

// Appends where a value came from to an error about it.
Status WithOrigin(const Status& s, const Setting& setting) {
  if (setting.origin.empty()) return s;
  return Status(s.code(), s.message() + " (from " + setting.origin + ")");
}

}  // namespace

TotemOptions::TotemOptions() {
  const totem::RingConfig ring;
  const totem::TransportConfig tc;
  mcast_addr = tc.mcast_group;
  mcast_port = tc.mcast_port;
  mcast_interface = tc.mcast_interface;
  token_timeout_ms = ring.token_timeout_us / 1000;
  join_timeout_ms = ring.join_timeout_us / 1000;
  consensus_timeout_ms = ring.consensus_timeout_us / 1000;
  merge_timeout_ms = ring.merge_timeout_us / 1000;
  window_size = ring.window_size;
  max_messages = ring.max_messages_per_visit;
  packing = ring.packing;
}

const ClusterMember* ServerConfig::Self() const {
  for (const ClusterMember& m : cluster) {
    if (m.id == node_id) return &m;
  }
  return nullptr;
}

const RingAddress* ClusterMember::OnRing(uint32_t ring) const {
  for (const RingAddress& a : rings) {
    if (a.ring == ring) return &a;
  }
  return nullptr;
}

std::vector<uint32_t> ServerConfig::Rings() const {
  std::set<uint32_t> rings;
  for (const ClusterMember& m : cluster) {
    for (const RingAddress& a : m.rings) rings.insert(a.ring);
  }
  return {rings.begin(), rings.end()};
}

totem::NodeConfig ServerConfig::TotemNodeConfig() const {
  const ClusterMember* self = Self();
  return TotemNodeConfig(self != nullptr && !self->rings.empty() ? self->rings.front().ring : 1);
}

totem::MultiRingNodeConfig ServerConfig::MultiRingConfig() const {
  totem::MultiRingNodeConfig mc;
  for (const ClusterMember& m : cluster) {
    if (m.id == node_id) {
      for (const RingAddress& a : m.rings) mc.local.push_back({a.ring, TotemNodeConfig(a.ring)});
    }
    for (size_t i = 0; i < m.rings.size(); ++i) {
      for (size_t j = i + 1; j < m.rings.size(); ++j) {
        mc.links.push_back({m.id, m.rings[i].ring, m.rings[j].ring});
      }
    }
  }
  mc.rings = Rings();
  return mc;
}

totem::NodeConfig ServerConfig::TotemNodeConfig(uint32_t ring) const {
  totem::NodeConfig nc;
  nc.ring.node_id = node_id;
  for (const ClusterMember& m : cluster) {
    const RingAddress* a = m.OnRing(ring);
    // Members built by hand (tests) may carry only host and port.
    if (m.rings.empty() && ring == 1) {
      nc.ring.members.push_back(m.id);
      nc.transport.peers.push_back({m.id, m.host, m.port});
    } else if (a != nullptr) {
      nc.ring.members.push_back(m.id);
      nc.transport.peers.push_back({m.id, a->host, a->port});
    }
  }
  nc.ring.token_timeout_us = totem.token_timeout_ms * 1000;
  nc.ring.join_timeout_us = totem.join_timeout_ms * 1000;
  nc.ring.consensus_timeout_us = totem.consensus_timeout_ms * 1000;
  nc.ring.merge_timeout_us = totem.merge_timeout_ms * 1000;
  nc.ring.window_size = totem.window_size;
  nc.ring.max_messages_per_visit = totem.max_messages;
  nc.ring.packing = totem.packing;
  // Bigger windows need a bigger receive buffer (at least 4x the window).
  while (static_cast<uint64_t>(nc.ring.window_size) * 4 > nc.ring.receive_buffer_frames &&
         nc.ring.receive_buffer_frames < (1u << 22)) {
    nc.ring.receive_buffer_frames *= 2;
  }
  nc.transport.mode = totem.transport;
  nc.transport.mcast_group = totem.mcast_addr;
  nc.transport.mcast_port = totem.mcast_port;
  nc.transport.mcast_interface = totem.mcast_interface;
  nc.transport.encrypt = totem.encryption;
  return nc;
}

StatusOr<std::vector<ClusterMember>> ParseInitialCluster(const std::string& text) {
  std::vector<ClusterMember> members;  // one per member id
  std::map<std::string, totem::NodeId> id_of_name;
  std::set<std::pair<std::string, uint16_t>> addresses;
  for (const std::string& entry : Split(text, ',')) {
    const auto bad = [&entry](const std::string& why) {
      return InvalidArgument("--initial-cluster: entry '" + entry + "': " + why +
                             " (want NAME=ID@HOST:PORT[/RING])");
    };
    const size_t eq = entry.find('=');
    const size_t at = entry.find('@');
    // HOST is a numeric IPv4 address, so a '/' can only start the ring.
    const size_t slash = entry.find('/', at == std::string::npos ? 0 : at);
    const std::string_view address =
        std::string_view(entry).substr(0, slash == std::string::npos ? entry.size() : slash);
    const size_t colon = address.rfind(':');
    if (eq == std::string::npos || at == std::string::npos || colon == std::string::npos ||
        !(eq < at && at < colon)) {
      return bad("malformed");
    }
    ClusterMember m;
    RingAddress ra;
    m.name = entry.substr(0, eq);
    ra.host = entry.substr(at + 1, colon - at - 1);
    if (m.name.empty()) return bad("empty name");
    if (!ParseUnsigned<totem::NodeId>(std::string_view(entry).substr(eq + 1, at - eq - 1),
                                      UINT32_MAX, &m.id) ||
        m.id == totem::kNoNode) {
      return bad("node id must be an integer in [1, 4294967295]");
    }
    if (!IsIpv4(ra.host)) return bad("host must be a numeric IPv4 address");
    if (!ParseUnsigned<uint16_t>(address.substr(colon + 1), 65535, &ra.port) || ra.port == 0) {
      return bad("port must be in [1, 65535]");
    }
    if (slash != std::string::npos &&
        (!ParseUnsigned<uint32_t>(std::string_view(entry).substr(slash + 1), UINT32_MAX,
                                  &ra.ring) ||
         ra.ring == 0)) {
      return bad("ring must be an integer in [1, 4294967295]");
    }
    auto same_id = std::find_if(members.begin(), members.end(),
                                [&m](const ClusterMember& o) { return o.id == m.id; });
    if (auto it = id_of_name.find(m.name); it != id_of_name.end() && it->second != m.id) {
      return bad("duplicate name: '" + m.name + "' is already node id " +
                 std::to_string(it->second));
    }
    if (same_id != members.end() && same_id->name != m.name) {
      return bad("duplicate node id: " + std::to_string(m.id) + " is already named '" +
                 same_id->name + "' (a gateway lists the same name and id on each of its rings)");
    }
    if (same_id != members.end() && same_id->OnRing(ra.ring) != nullptr) {
      return bad("member '" + m.name + "' is listed twice on ring " + std::to_string(ra.ring));
    }
    if (!addresses.insert({ra.host, ra.port}).second) {
      return bad("address " + ra.host + ":" + std::to_string(ra.port) + " is used twice");
    }
    id_of_name[m.name] = m.id;
    if (same_id != members.end()) {
      same_id->rings.push_back(std::move(ra));
    } else {
      m.rings.push_back(std::move(ra));
      members.push_back(std::move(m));
    }
  }
  std::set<uint32_t> rings;
  for (ClusterMember& m : members) {
    std::sort(m.rings.begin(), m.rings.end(),
              [](const RingAddress& a, const RingAddress& b) { return a.ring < b.ring; });
    m.host = m.rings.front().host;
    m.port = m.rings.front().port;
    for (const RingAddress& ra : m.rings) rings.insert(ra.ring);
  }
  // The ring graph (gateways join every pair of their rings) must be
  // connected, or some rings could never order each other's writes.
  if (rings.size() > 1) {
    std::set<uint32_t> reached = {*rings.begin()};
    for (bool grew = true; grew;) {
      grew = false;
      for (const ClusterMember& m : members) {
        const bool touches = std::any_of(m.rings.begin(), m.rings.end(), [&](const RingAddress& a) {
          return reached.count(a.ring) != 0;
        });
        if (!touches) continue;
        for (const RingAddress& a : m.rings) grew |= reached.insert(a.ring).second;
      }
    }
    for (uint32_t r : rings) {
      if (reached.count(r) == 0) {
        return InvalidArgument("--initial-cluster: ring " + std::to_string(r) +
                               " is not joined to ring " + std::to_string(*rings.begin()) +
                               " by any chain of gateways (a gateway is a member listed on two "
                               "rings with the same name and id)");
      }
    }
  }
  std::sort(members.begin(), members.end(),
            [](const ClusterMember& a, const ClusterMember& b) { return a.id < b.id; });
  return members;
}

StatusOr<std::string> ClientUrlToAddress(const std::string& url) {
  constexpr std::string_view kUnix = "unix://";
  if (url.rfind(kUnix, 0) == 0) {
    // As etcd: everything after the scheme is the socket path, so
    // unix:///run/x.sock is absolute and unix://x.sock relative.
    const std::string path = url.substr(kUnix.size());
    // sun_path holds 108 bytes including the terminating NUL.
    if (path.empty() || path.size() > 107 || path.find('\0') != std::string::npos) {
      return InvalidArgument("client URL '" + url +
                             "': want unix://PATH with a socket path of 1 to 107 bytes");
    }
    return "unix:" + path;
  }
  const size_t scheme_size = url.rfind("http://", 0) == 0    ? 7
                             : url.rfind("https://", 0) == 0 ? 8
                                                             : 0;
  if (scheme_size == 0) {
    return InvalidArgument("client URL '" + url +
                           "': only http:// (plaintext gRPC), https:// (TLS) and unix:// are "
                           "supported");
  }
  std::string rest = url.substr(scheme_size);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  uint16_t port = 0;
  if (colon == std::string::npos || colon == 0 || rest.find('/') != std::string::npos ||
      !ParseUnsigned<uint16_t>(std::string_view(rest).substr(colon + 1), 65535, &port)) {
    return InvalidArgument("client URL '" + url + "': want http://HOST:PORT or https://HOST:PORT");
  }
  return rest;
}

bool IsTlsUrl(const std::string& url) { return url.rfind("https://", 0) == 0; }

StatusOr<std::vector<ConfigFileEntry>> ParseConfigFile(const std::string& text,
                                                       const std::string& path) {
  std::vector<ConfigFileEntry> entries;
  std::map<std::string, int> seen;
  std::string_view rest(text);
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);  // UTF-8 BOM
  int line_no = 0;
  bool started = false;  // a non-comment line was seen
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    ++line_no;
    const auto bad = [&](const std::string& why) {
      return InvalidArgument("config file " + path + " line " + std::to_string(line_no) + ": " +
                             why);
    };
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    if (line == "---") {
      if (started) return bad("several YAML documents are not supported");
      started = true;
      continue;
    }
    started = true;
    if (first != 0) {
      return bad(line[first] == '-' ? "lists are not supported (give a comma-separated string)"
                                    : "indented line: nested values are not supported");
    }
    if (line[0] == '-') return bad("lists are not supported (give a comma-separated string)");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos ||
        (colon + 1 < line.size() && line[colon + 1] != ' ' && line[colon + 1] != '\t')) {
      return bad("malformed line (want 'key: value')");
    }
    ConfigFileEntry e;
    e.key = std::string(line.substr(0, colon));
    e.line = line_no;
    for (char ch : e.key) {
      if (!std::islower(static_cast<unsigned char>(ch)) &&
          !std::isdigit(static_cast<unsigned char>(ch)) && ch != '-') {
        return bad("malformed key '" + e.key + "' (want lower-case flag names like data-dir)");
      }
    }
    if (e.key.empty()) return bad("malformed line (empty key)");
    std::string_view value = line.substr(colon + 1);
    const size_t vstart = value.find_first_not_of(" \t");
    value.remove_prefix(vstart == std::string_view::npos ? value.size() : vstart);
    std::string why;
    if (!ParseYamlValue(value, &e.value, &why)) return bad("key '" + e.key + "': " + why);
    auto [it, inserted] = seen.emplace(e.key, line_no);
    if (!inserted) {
      return bad("key '" + e.key + "' repeated (first on line " + std::to_string(it->second) + ")");
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

StatusOr<std::string> ReadConfigFileFromDisk(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return totem::IoError("cannot open '" + path + "'");
  std::string text;
  char buf[4096];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxConfigFileBytes) {
      return totem::IoError("'" + path + "' is larger than 1 MiB");
    }
  }
  if (in.bad()) return totem::IoError("cannot read '" + path + "'");
  return text;
}

const char* Usage() {
  static const std::string usage = [] {
    std::string u = "usage: totemkvd [flags]\n";
    for (const FlagSpec& f : Flags()) {
      std::string head = std::string("  --") + f.name + " " + f.arg;
      const std::vector<std::string> lines = Split(f.help, '\n');
      for (size_t i = 0; i < lines.size(); ++i) {
        std::string left = i == 0 ? head : "";
        if (left.size() >= 34) {
          u += left + "\n";
          left.clear();
        }
        u += left + std::string(34 - left.size(), ' ') + lines[i] + "\n";
      }
    }
    u += "Flags accept --flag VALUE and --flag=VALUE. Every flag can also be set by\n"
         "the environment variable TOTEMKVD_<FLAG> (upper case, '-' -> '_', e.g.\n"
         "TOTEMKVD_DATA_DIR) or by a config file key of the flag's name (e.g.\n"
         "`data-dir: /var/lib/totemkv`); precedence: flag > environment > file >\n"
         "default.\n";
    return u;
  }();
  return usage.c_str();
}

StatusOr<ServerConfig> ParseConfig(const ConfigSources& sources) {
  std::map<std::string, Setting> flags;  // command line, last one wins
  const std::vector<std::string>& args = sources.args;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::string value;
    bool has_value = false;
    if (flag == "-h" || flag == "--help") return InvalidArgument("help");
    const size_t eq = flag.find('=');
    if (eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    }
    if (flag.rfind("--", 0) != 0 || !IsFlag(flag.substr(2))) {
      return InvalidArgument("unknown flag '" + flag + "'");
    }
    if (!has_value) {
      if (i + 1 >= args.size()) return InvalidArgument("flag " + flag + " needs a value");
      value = args[++i];
    }
    flags[flag.substr(2)] = {value, ""};
  }

  std::map<std::string, Setting> env;
  for (const std::string& entry : sources.env) {
    if (entry.rfind(kEnvPrefix, 0) != 0) continue;
    const size_t eq = entry.find('=');
    const std::string var = entry.substr(0, eq);
    std::string flag;
    for (char ch : var.substr(sizeof(kEnvPrefix) - 1)) {
      flag += ch == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    if (!IsFlag(flag) || EnvName(flag) != var) {
      return InvalidArgument("unknown environment variable " + var +
                             " (TOTEMKVD_* variables must name a flag, e.g. TOTEMKVD_DATA_DIR)");
    }
    env[flag] = {eq == std::string::npos ? "" : entry.substr(eq + 1), "environment " + var};
  }

  std::map<std::string, Setting> settings;
  std::string config_file;
  if (auto it = flags.find("config-file"); it != flags.end()) {
    config_file = it->second.value;
  } else if (auto e = env.find("config-file"); e != env.end()) {
    config_file = e->second.value;
  }
  if (flags.count("config-file") != 0 || env.count("config-file") != 0) {
    if (config_file.empty()) return InvalidArgument("--config-file: empty path");
    StatusOr<std::string> text =
        sources.read_file ? sources.read_file(config_file) : ReadConfigFileFromDisk(config_file);
    if (!text.ok()) {
      return Status(text.status().code(), "--config-file: " + text.status().message());
    }
    StatusOr<std::vector<ConfigFileEntry>> entries = ParseConfigFile(*text, config_file);
    if (!entries.ok()) return entries.status();
    for (const ConfigFileEntry& e : *entries) {
      const std::string where = "config file " + config_file + " line " + std::to_string(e.line);
      if (e.key == "config-file") {
        return InvalidArgument(where + ": a config file cannot name another config file");
      }
      if (!IsFlag(e.key)) return InvalidArgument(where + ": unknown key '" + e.key + "'");
      settings[e.key] = {e.value, where};
    }
  }
  for (auto& [k, v] : env) settings[k] = v;
  for (auto& [k, v] : flags) settings[k] = v;
  settings.erase("config-file");

  ServerConfig c;
  c.config_file = config_file;
  const auto bad = [&settings](const std::string& flag, const std::string& why) {
    return WithOrigin(InvalidArgument("--" + flag + ": " + why), settings[flag]);
  };
  const auto get = [&settings](const std::string& flag, std::string* out) {
    auto it = settings.find(flag);
    if (it == settings.end()) return false;
    *out = it->second.value;
    return true;
  };
  std::string value;
  const bool name_given = get("name", &c.name);
  get("data-dir", &c.data_dir);
  get("key-file", &c.key_file);
  get("restore-snapshot", &c.restore_snapshot);
  if (get("sync", &value) && !ParseBool(value, &c.sync)) return bad("sync", "want true or false");
  if (get("replication-log-ops", &value) &&
      (!ParseUnsigned<uint64_t>(value, 1000000000, &c.replication_log_ops) ||
       c.replication_log_ops == 0)) {
    return bad("replication-log-ops", "want an integer in [1, 1000000000]");
  }
  if (get("max-watches", &value) &&
      (!ParseUnsigned<size_t>(value, 100000000, &c.max_watches) || c.max_watches == 0)) {
    return bad("max-watches", "want an integer in [1, 100000000]");
  }
  if (get("watch-progress-notify-interval-ms", &value) &&
      (!ParseUnsigned<uint64_t>(value, 86400000, &c.watch_progress_notify_interval_ms) ||
       c.watch_progress_notify_interval_ms < 10)) {
    return bad("watch-progress-notify-interval-ms", "want an integer in [10, 86400000]");
  }

  // Totem settings.
  TotemOptions& t = c.totem;
  if (get("totem-transport", &value)) {
    if (value == "unicast") {
      t.transport = totem::TransportMode::kUnicast;
    } else if (value == "multicast") {
      t.transport = totem::TransportMode::kMulticast;
    } else {
      return bad("totem-transport", "want unicast or multicast, got '" + value + "'");
    }
  }
  if (get("totem-mcast-addr", &value)) {
    if (!IsIpv4(value))
      return bad("totem-mcast-addr", "'" + value + "' is not a numeric IPv4 address");
    t.mcast_addr = value;
  }
  if (get("totem-mcast-interface", &value)) {
    if (!IsIpv4(value)) {
      return bad("totem-mcast-interface", "'" + value + "' is not a numeric IPv4 address");
    }
    t.mcast_interface = value;
  }
  if (get("totem-mcast-port", &value) &&
      (!ParseUnsigned<uint16_t>(value, 65535, &t.mcast_port) || t.mcast_port == 0)) {
    return bad("totem-mcast-port", "want a port in [1, 65535], got '" + value + "'");
  }
  // Times in ms must fit totem's µs fields (uint32).
  constexpr uint32_t kMaxMs = UINT32_MAX / 1000;
  const std::pair<const char*, uint32_t*> kUint32s[] = {
      {"totem-token-timeout-ms", &t.token_timeout_ms},
      {"totem-join-timeout-ms", &t.join_timeout_ms},
      {"totem-consensus-timeout-ms", &t.consensus_timeout_ms},
      {"totem-merge-timeout-ms", &t.merge_timeout_ms},
      {"totem-window-size", &t.window_size},
      {"totem-max-messages", &t.max_messages},
  };
  for (const auto& [flag, field] : kUint32s) {
    if (!get(flag, &value)) continue;
    const bool is_ms = std::string_view(flag).ends_with("-ms");
    const uint32_t max = is_ms ? kMaxMs : UINT32_MAX;
    if (!ParseUnsigned<uint32_t>(value, max, field) || *field == 0) {
      return bad(flag, "want an integer in [1, " + std::to_string(max) + "], got '" + value + "'");
    }
  }
  if (get("totem-packing", &value) && !ParseBool(value, &t.packing)) {
    return bad("totem-packing", "want true or false");
  }
  if (get("totem-encryption", &value) && !ParseBool(value, &t.encryption)) {
    return bad("totem-encryption", "want true or false");
  }
  if (get("log-format", &value) && !ParseLogFormat(value, &c.log_format)) {
    return bad("log-format", "want text or json, got '" + value + "'");
  }
  if (get("log-level", &value) && !ParseLogLevel(value, &c.log_level)) {
    return bad("log-level", "want debug, info, warn or error, got '" + value + "'");
  }

  if (c.name.empty()) return bad("name", "must not be empty");
  if (c.data_dir.empty()) c.data_dir = c.name + ".totemkv";

  if (get("listen-client-urls", &value) && !value.empty()) {
    c.listen_client_urls = Split(value, ',');
  }
  for (const std::string& url : c.listen_client_urls) {
    StatusOr<std::string> addr = ClientUrlToAddress(url);
    if (!addr.ok()) return bad("listen-client-urls", addr.status().message());
    c.listen_addresses.push_back(*addr);
    c.listen_tls.push_back(IsTlsUrl(url));
  }
  get("client-cert-file", &c.client_cert_file);
  get("client-key-file", &c.client_key_file);
  get("client-trusted-ca-file", &c.client_trusted_ca_file);
  if (get("client-cert-auth", &value) && !ParseBool(value, &c.client_cert_auth)) {
    return bad("client-cert-auth", "want true or false");
  }
  const bool any_tls =
      std::find(c.listen_tls.begin(), c.listen_tls.end(), true) != c.listen_tls.end();
  if (any_tls && (c.client_cert_file.empty() || c.client_key_file.empty())) {
    return bad("listen-client-urls",
               "an https:// URL needs --client-cert-file and --client-key-file");
  }
  if (!any_tls) {
    for (const char* flag : {"client-cert-file", "client-key-file", "client-trusted-ca-file"}) {
      if (get(flag, &value) && !value.empty()) {
        return bad(flag, "given, but no --listen-client-urls URL is https://");
      }
    }
    if (c.client_cert_auth) {
      return bad("client-cert-auth", "true, but no --listen-client-urls URL is https://");
    }
  }
  if (c.client_cert_auth && c.client_trusted_ca_file.empty()) {
    return bad("client-cert-auth", "true needs --client-trusted-ca-file");
  }
  if (get("listen-metrics-urls", &value) && !value.empty()) {
    for (const std::string& url : Split(value, ',')) {
      StatusOr<std::string> addr = ClientUrlToAddress(url);
      if (!addr.ok() || url.rfind("http://", 0) != 0) {
        return bad("listen-metrics-urls", "URL '" + url + "': want http://HOST:PORT");
      }
      c.listen_metrics_urls.push_back(url);
      c.metrics_addresses.push_back(*addr);
    }
  }

  std::string initial_cluster;
  if (!get("initial-cluster", &initial_cluster) || initial_cluster.empty()) {
    initial_cluster = c.name + "=1@127.0.0.1:2380";
  }
  StatusOr<std::vector<ClusterMember>> members = ParseInitialCluster(initial_cluster);
  if (!members.ok()) return WithOrigin(members.status(), settings["initial-cluster"]);
  c.cluster = std::move(*members);

  if (get("node-id", &value) && !value.empty()) {
    if (!ParseUnsigned<totem::NodeId>(value, UINT32_MAX, &c.node_id) ||
        c.node_id == totem::kNoNode) {
      return bad("node-id", "want an integer in [1, 4294967295]");
    }
  } else {
    for (const ClusterMember& m : c.cluster) {
      if (m.name == c.name) c.node_id = m.id;
    }
    if (c.node_id == totem::kNoNode) {
      return InvalidArgument("--name '" + c.name +
                             "' is not in --initial-cluster; give --node-id or a listed name");
    }
  }
  const ClusterMember* self = c.Self();
  if (self == nullptr) {
    return InvalidArgument("--node-id " + std::to_string(c.node_id) +
                           " is not in --initial-cluster");
  }
  if (name_given && self->name != c.name) {
    return InvalidArgument("--name '" + c.name + "' but node id " + std::to_string(c.node_id) +
                           " is named '" + self->name + "' in --initial-cluster");
  }
  c.name = self->name;

  if (get("initial-cluster-client-urls", &value) && !value.empty()) {
    for (const std::string& entry : Split(value, ',')) {
      const size_t eq = entry.find('=');
      if (eq == std::string::npos) {
        return bad("initial-cluster-client-urls", "entry '" + entry + "' is not NAME=URL[;URL...]");
      }
      const std::string name = entry.substr(0, eq);
      auto it = std::find_if(c.cluster.begin(), c.cluster.end(),
                             [&name](const ClusterMember& m) { return m.name == name; });
      if (it == c.cluster.end()) {
        return bad("initial-cluster-client-urls", "'" + name + "' is not in --initial-cluster");
      }
      for (const std::string& url : Split(entry.substr(eq + 1), ';')) {
        StatusOr<std::string> addr = ClientUrlToAddress(url);
        if (!addr.ok()) return bad("initial-cluster-client-urls", addr.status().message());
        it->client_urls.push_back(url);
      }
    }
  }
  for (ClusterMember& m : c.cluster) {
    if (m.id == c.node_id && m.client_urls.empty()) m.client_urls = c.listen_client_urls;
  }
  if (c.key_file.empty() && c.cluster.size() > 1) {
    return InvalidArgument("--key-file is required for a cluster of " +
                           std::to_string(c.cluster.size()) +
                           " members (make one with totem-keygen and give it to every member)");
  }

  if (t.transport == totem::TransportMode::kMulticast && t.mcast_port == 0) {
    return InvalidArgument("--totem-mcast-port is required with --totem-transport=multicast");
  }
  // The Totem library's own validation, on exactly what the node will get.
  // The key is read later (main); a placeholder stands in for it here.
  if (!c.MultiRing()) {
    totem::NodeConfig nc = c.TotemNodeConfig();
    nc.transport.key = std::string(32, 'k');
    for (const Status& s : {nc.ring.Validate(), nc.transport.Validate(c.node_id)}) {
      if (!s.ok()) return InvalidArgument("--totem-* settings: " + s.message());
    }
    return c;
  }
  if (t.transport == totem::TransportMode::kMulticast) {
    return InvalidArgument(
        "--totem-transport=multicast: not supported with several rings in --initial-cluster "
        "(each ring would need its own group); use unicast");
  }
  totem::MultiRingNodeConfig mc = c.MultiRingConfig();
  mc.incarnation = 1;
  for (totem::MultiRingNodeConfig::LocalRing& lr : mc.local) {
    lr.node.transport.key = std::string(32, 'k');
    for (const Status& s : {lr.node.ring.Validate(), lr.node.transport.Validate(c.node_id)}) {
      if (!s.ok()) {
        return InvalidArgument("--totem-* settings (ring " + std::to_string(lr.ring) +
                               "): " + s.message());
      }
    }
  }
  if (Status s = mc.Validate(); !s.ok()) {
    return InvalidArgument("--initial-cluster: rings and gateways: " + s.message());
  }
  return c;
}

StatusOr<ServerConfig> ParseFlags(const std::vector<std::string>& args) {
  return ParseConfig({args, {}, nullptr});
}

bool HoldsMajority(const std::vector<totem::NodeId>& members,
                   const std::vector<ClusterMember>& cluster) {
  size_t in_cluster = 0;
  for (totem::NodeId id : members) {
    if (std::any_of(cluster.begin(), cluster.end(),
                    [id](const ClusterMember& m) { return m.id == id; })) {
      ++in_cluster;
    }
  }
  return in_cluster * 2 > cluster.size();
}

}  // namespace totemkv::server

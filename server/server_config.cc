// Flag parsing for totemkvd (see server_config.h for the formats). Every
// error names the flag and the offending text, so a typo in a long
// --initial-cluster list is easy to find.
#include "server_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <string_view>

namespace totemkv::server {
namespace {

using totem::InvalidArgument;
using totem::Status;
using totem::StatusOr;

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

}  // namespace

const ClusterMember* ServerConfig::Self() const {
  for (const ClusterMember& m : cluster) {
    if (m.id == node_id) return &m;
  }
  return nullptr;
}

StatusOr<std::vector<ClusterMember>> ParseInitialCluster(const std::string& text) {
  std::vector<ClusterMember> members;
  std::set<std::string> names;
  std::set<totem::NodeId> ids;
  for (const std::string& entry : Split(text, ',')) {
    const auto bad = [&entry](const std::string& why) {
      return InvalidArgument("--initial-cluster: entry '" + entry + "': " + why +
                             " (want NAME=ID@HOST:PORT)");
    };
    const size_t eq = entry.find('=');
    const size_t at = entry.find('@');
    const size_t colon = entry.rfind(':');
    if (eq == std::string::npos || at == std::string::npos || colon == std::string::npos ||
        !(eq < at && at < colon)) {
      return bad("malformed");
    }
    ClusterMember m;
    m.name = entry.substr(0, eq);
    m.host = entry.substr(at + 1, colon - at - 1);
    if (m.name.empty()) return bad("empty name");
    if (!ParseUnsigned<totem::NodeId>(std::string_view(entry).substr(eq + 1, at - eq - 1),
                                      UINT32_MAX, &m.id) ||
        m.id == totem::kNoNode) {
      return bad("node id must be an integer in [1, 4294967295]");
    }
    if (!IsIpv4(m.host)) return bad("host must be a numeric IPv4 address");
    if (!ParseUnsigned<uint16_t>(std::string_view(entry).substr(colon + 1), 65535, &m.port) ||
        m.port == 0) {
      return bad("port must be in [1, 65535]");
    }
    if (!names.insert(m.name).second) return bad("duplicate name");
    if (!ids.insert(m.id).second) return bad("duplicate node id");
    members.push_back(std::move(m));
  }
  std::sort(members.begin(), members.end(),
            [](const ClusterMember& a, const ClusterMember& b) { return a.id < b.id; });
  return members;
}

StatusOr<std::string> ClientUrlToAddress(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) {
    return InvalidArgument("client URL '" + url + "': only http:// (plaintext gRPC) is supported");
  }
  std::string rest = url.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  uint16_t port = 0;
  if (colon == std::string::npos || colon == 0 || rest.find('/') != std::string::npos ||
      !ParseUnsigned<uint16_t>(std::string_view(rest).substr(colon + 1), 65535, &port)) {
    return InvalidArgument("client URL '" + url + "': want http://HOST:PORT");
  }
  return rest;
}

const char* Usage() {
  return "usage: totemkvd [flags]\n"
         "  --name NAME                     member name (default: default)\n"
         "  --data-dir DIR                  data folder (default: ./NAME.totemkv)\n"
         "  --listen-client-urls URL,...    gRPC (etcd v3 API) listen URLs, http://HOST:PORT\n"
         "                                  (default: http://127.0.0.1:2379)\n"
         "  --initial-cluster LIST          NAME=ID@HOST:PORT,... : every member's name, Totem\n"
         "                                  node id and Totem UDP address\n"
         "                                  (default: NAME=1@127.0.0.1:2380, a single node)\n"
         "  --initial-cluster-client-urls L NAME=URL[;URL...],... : client URLs MemberList "
         "reports\n"
         "  --node-id ID                    this member's Totem node id (default: from --name)\n"
         "  --key-file PATH                 Totem cluster key (totem-keygen); required for\n"
         "                                  several members, generated in DIR for one\n"
         "  --sync BOOL                     fsync once per applied batch (default: true)\n"
         "Flags accept --flag VALUE and --flag=VALUE.\n";
}

StatusOr<ServerConfig> ParseFlags(const std::vector<std::string>& args) {
  ServerConfig c;
  std::string initial_cluster;
  std::string client_urls_flag;
  std::string listen_flag;
  std::string node_id_flag;
  bool name_given = false;
  static const std::set<std::string> kFlags = {
      "--name",     "--data-dir", "--listen-client-urls",         "--initial-cluster", "--node-id",
      "--key-file", "--sync",     "--initial-cluster-client-urls"};
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
    if (kFlags.count(flag) == 0) return InvalidArgument("unknown flag '" + flag + "'");
    if (!has_value) {
      if (i + 1 >= args.size()) return InvalidArgument("flag " + flag + " needs a value");
      value = args[++i];
    }
    if (flag == "--name") {
      c.name = value;
      name_given = true;
    } else if (flag == "--data-dir") {
      c.data_dir = value;
    } else if (flag == "--listen-client-urls") {
      listen_flag = value;
    } else if (flag == "--initial-cluster") {
      initial_cluster = value;
    } else if (flag == "--initial-cluster-client-urls") {
      client_urls_flag = value;
    } else if (flag == "--node-id") {
      node_id_flag = value;
    } else if (flag == "--key-file") {
      c.key_file = value;
    } else if (flag == "--sync") {
      if (!ParseBool(value, &c.sync)) return InvalidArgument("--sync: want true or false");
    }
  }
  if (c.name.empty()) return InvalidArgument("--name must not be empty");
  if (c.data_dir.empty()) c.data_dir = c.name + ".totemkv";

  if (!listen_flag.empty()) c.listen_client_urls = Split(listen_flag, ',');
  for (const std::string& url : c.listen_client_urls) {
    StatusOr<std::string> addr = ClientUrlToAddress(url);
    if (!addr.ok())
      return Status(addr.status().code(), "--listen-client-urls: " + addr.status().message());
    c.listen_addresses.push_back(*addr);
  }

  if (initial_cluster.empty()) initial_cluster = c.name + "=1@127.0.0.1:2380";
  StatusOr<std::vector<ClusterMember>> members = ParseInitialCluster(initial_cluster);
  if (!members.ok()) return members.status();
  c.cluster = std::move(*members);

  if (!node_id_flag.empty()) {
    if (!ParseUnsigned<totem::NodeId>(node_id_flag, UINT32_MAX, &c.node_id) ||
        c.node_id == totem::kNoNode) {
      return InvalidArgument("--node-id: want an integer in [1, 4294967295]");
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

  if (!client_urls_flag.empty()) {
    for (const std::string& entry : Split(client_urls_flag, ',')) {
      const size_t eq = entry.find('=');
      if (eq == std::string::npos) {
        return InvalidArgument("--initial-cluster-client-urls: entry '" + entry +
                               "' is not NAME=URL[;URL...]");
      }
      const std::string name = entry.substr(0, eq);
      auto it = std::find_if(c.cluster.begin(), c.cluster.end(),
                             [&name](const ClusterMember& m) { return m.name == name; });
      if (it == c.cluster.end()) {
        return InvalidArgument("--initial-cluster-client-urls: '" + name +
                               "' is not in --initial-cluster");
      }
      for (const std::string& url : Split(entry.substr(eq + 1), ';')) {
        StatusOr<std::string> addr = ClientUrlToAddress(url);
        if (!addr.ok()) {
          return Status(addr.status().code(),
                        "--initial-cluster-client-urls: " + addr.status().message());
        }
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
  return c;
}

}  // namespace totemkv::server

// totemkvd's configuration: the command-line flags (etcd's names where etcd
// has one) parsed into a ServerConfig, plus the small parsers they need
// (the --initial-cluster member list and client URLs). Parsing is pure: it
// touches no file or socket, so it is unit-testable; main() acts on it.
//
// --initial-cluster format: a comma-separated list of
//   NAME=ID@HOST:PORT
// one entry per cluster member: NAME is the etcd-style member name, ID the
// Totem node id (1..2^32-1, unique), HOST:PORT the member's Totem UDP
// address (numeric IPv4). Example: n1=1@127.0.0.1:7001,n2=2@127.0.0.1:7002.
// --initial-cluster-client-urls: NAME=URL[;URL...] entries, comma
// separated, giving the client URLs Cluster.MemberList reports for each
// member; a member without an entry reports none, except this node, which
// reports its own --listen-client-urls.
#ifndef TOTEMKV_SERVER_SERVER_CONFIG_H_
#define TOTEMKV_SERVER_SERVER_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "totem/status.h"
#include "totem/types.h"

namespace totemkv::server {

struct ClusterMember {
  std::string name;
  totem::NodeId id = totem::kNoNode;
  std::string host;
  uint16_t port = 0;
  std::vector<std::string> client_urls;  // for MemberList
};

struct ServerConfig {
  std::string name = "default";
  std::string data_dir;  // default: "./<name>.totemkv"
  // gRPC listen addresses as given (http://HOST:PORT) and as gRPC wants
  // them (HOST:PORT).
  std::vector<std::string> listen_client_urls = {"http://127.0.0.1:2379"};
  std::vector<std::string> listen_addresses;
  std::vector<ClusterMember> cluster;  // sorted by id
  totem::NodeId node_id = totem::kNoNode;
  std::string key_file;  // empty: <data-dir>/cluster.key (single-node only)
  bool sync = true;

  const ClusterMember* Self() const;
};

// Parses `NAME=ID@HOST:PORT,...`.
totem::StatusOr<std::vector<ClusterMember>> ParseInitialCluster(const std::string& text);

// "http://127.0.0.1:2379" -> "127.0.0.1:2379". Only http (plaintext).
totem::StatusOr<std::string> ClientUrlToAddress(const std::string& url);

// Parses argv (without argv[0]) into a validated config. Help requests
// come back as InvalidArgument with message "help".
totem::StatusOr<ServerConfig> ParseFlags(const std::vector<std::string>& args);

// The usage text printed for --help and after a flag error.
const char* Usage();

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_SERVER_CONFIG_H_

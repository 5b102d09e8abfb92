// totemkvd's configuration: the command-line flags (etcd's names where etcd
// has one), TOTEMKVD_* environment variables and an optional YAML config
// file, merged and parsed into a ServerConfig, plus the small parsers they
// need (the --initial-cluster member list, client URLs, the config file).
// Parsing is pure: the environment comes in as a list and the config file
// through a reader callback, so it is unit-testable; main() acts on it.
//
// Sources, highest precedence first: command-line flag, environment
// variable TOTEMKVD_<FLAG> (upper case, '-' -> '_', e.g. TOTEMKVD_DATA_DIR),
// config file key (the flag name without "--", e.g. `data-dir: /var/lib/x`),
// built-in default. Unknown flags, unknown TOTEMKVD_* variables and unknown
// config keys are errors. Every error names the flag and, for a value from
// the file or the environment, where it came from.
//
// Config file: a strict subset of YAML, like etcd's --config-file: one
// `key: value` per line starting in column 0; `#` comments (whole line, or
// after a blank); values plain, "double-quoted" (escapes \\ \" \n \t) or
// 'single-quoted' ('' for a quote); an optional leading `---`. Nesting,
// lists, flow collections, anchors, tags and block scalars are rejected
// with the line number. Lists of URLs are comma-separated strings, as flags.
//
// --initial-cluster format: a comma-separated list of
//   NAME=ID@HOST:PORT[/RING]
// one entry per cluster member and ring: NAME is the etcd-style member
// name, ID the Totem node id (1..2^32-1, one name per id), HOST:PORT the
// member's Totem UDP address on that ring (numeric IPv4), RING the ring
// number (1..2^32-1, default 1). Example: n1=1@127.0.0.1:7001,n2=2@127.0.0.1:7002.
// Two rings joined by a gateway (Totem multiple-ring protocol): a member
// listed on two or more rings (same name and id, one address per ring) is a
// gateway; the rings and gateways must form a connected graph, e.g.
//   n1=1@10.0.1.1:2380/1,gw=9@10.0.1.9:2380/1,gw=9@10.0.2.9:2380/2,n3=3@10.0.2.3:2380/2
// With one ring totemkvd runs one Totem ring exactly as without ring
// numbers; with several every member runs the multiple-ring layer over its
// rings and the store orders its writes by the global total order.
// --initial-cluster-client-urls: NAME=URL[;URL...] entries, comma
// separated, giving the client URLs Cluster.MemberList reports for each
// member; a member without an entry reports none, except this node, which
// reports its own --listen-client-urls.
#ifndef TOTEMKV_SERVER_SERVER_CONFIG_H_
#define TOTEMKV_SERVER_SERVER_CONFIG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "log.h"
#include "totem/config.h"
#include "totem/multi_ring_node.h"
#include "totem/status.h"
#include "totem/types.h"

namespace totemkv::server {

// A member's Totem UDP address on one ring.
struct RingAddress {
  uint32_t ring = 1;
  std::string host;
  uint16_t port = 0;
};

struct ClusterMember {
  std::string name;
  totem::NodeId id = totem::kNoNode;
  // The address on the member's lowest-numbered ring (= rings.front()).
  std::string host;
  uint16_t port = 0;
  std::vector<std::string> client_urls;  // for MemberList
  // Every ring the member is on, ascending by ring; two or more: a gateway.
  // (Empty only in members built by hand: then host:port on ring 1.)
  std::vector<RingAddress> rings = {};

  const RingAddress* OnRing(uint32_t ring) const;
};

// Totem protocol and transport settings (the --totem-* flags), mapped onto
// totem::NodeConfig by ServerConfig::TotemNodeConfig. Defaults are totem's
// own (totem/config.h); times are in milliseconds here, µs in totem.
struct TotemOptions {
  TotemOptions();  // totem's defaults
  totem::TransportMode transport = totem::TransportMode::kUnicast;
  std::string mcast_addr;       // multicast group (multicast only)
  uint16_t mcast_port = 0;      // required for multicast
  std::string mcast_interface;  // local interface address for the group
  uint32_t token_timeout_ms = 0;
  uint32_t join_timeout_ms = 0;
  uint32_t consensus_timeout_ms = 0;
  uint32_t merge_timeout_ms = 0;
  uint32_t window_size = 0;
  uint32_t max_messages = 0;  // per token visit (max_messages_per_visit)
  bool packing = true;
  // Encrypt ring traffic (AES-256-GCM, totem::TransportConfig::encrypt);
  // every member must agree.
  bool encryption = false;
};

struct ServerConfig {
  std::string name = "default";
  std::string data_dir;  // default: "./<name>.totemkv"
  // gRPC listen addresses as given (http://HOST:PORT) and as gRPC wants
  // them (HOST:PORT).
  std::vector<std::string> listen_client_urls = {"http://127.0.0.1:2379"};
  std::vector<std::string> listen_addresses;
  // Per listen address: served with TLS (an https:// URL).
  std::vector<bool> listen_tls;
  // TLS for https:// client URLs: PEM file paths. etcd names them
  // --cert-file, --key-file, --trusted-ca-file and --client-cert-auth;
  // ours carry a "client-" prefix because --key-file is the cluster key.
  std::string client_cert_file;
  std::string client_key_file;
  std::string client_trusted_ca_file;
  bool client_cert_auth = false;  // require a client certificate signed by the CA
  // Prometheus endpoints (metrics.h): http://HOST:PORT as given, HOST:PORT.
  std::vector<std::string> listen_metrics_urls;
  std::vector<std::string> metrics_addresses;
  std::vector<ClusterMember> cluster;  // sorted by id
  totem::NodeId node_id = totem::kNoNode;
  std::string key_file;  // empty: <data-dir>/cluster.key (single-node only)
  // Set: restore <data_dir>/db from this backup file and exit.
  std::string restore_snapshot;
  bool sync = true;
  // Watch service (server/watch_hub.h).
  size_t max_watches = 10000;
  uint64_t replication_log_ops = 50000;  // op log retention (ops)
  uint64_t watch_progress_notify_interval_ms = 10 * 60 * 1000;
  std::string config_file;  // the file read, if any
  TotemOptions totem;
  // Structured logs on stderr (log.h).
  LogFormat log_format = LogFormat::kText;
  LogLevel log_level = LogLevel::kInfo;

  const ClusterMember* Self() const;
  // Every ring number of `cluster`, ascending (one: [1] or the one given).
  std::vector<uint32_t> Rings() const;
  // More than one ring: totemkvd runs the multiple-ring layer.
  bool MultiRing() const { return Rings().size() > 1; }
  // The Totem node config for this member on `ring` (default: its lowest
  // ring): that ring's members and their addresses on it from `cluster`,
  // protocol and transport settings from `totem`. The caller adds the key,
  // the state dir and message size limits.
  totem::NodeConfig TotemNodeConfig() const;
  totem::NodeConfig TotemNodeConfig(uint32_t ring) const;
  // Multi-ring mode: one TotemNodeConfig per ring this member is on (the
  // lowest first), every ring and every gateway edge (each pair of a
  // gateway's rings). The caller adds keys, state dirs, message size
  // limits and the incarnation.
  totem::MultiRingNodeConfig MultiRingConfig() const;
};

// One `key: value` entry of a config file.
struct ConfigFileEntry {
  std::string key;
  std::string value;
  int line = 0;  // 1-based
};

// Parses config file text (the YAML subset above) without checking keys
// against the flags. Errors: INVALID_ARGUMENT "config file PATH line N:
// WHY" for a malformed line or a repeated key.
totem::StatusOr<std::vector<ConfigFileEntry>> ParseConfigFile(const std::string& text,
                                                              const std::string& path);

// Everything ParseConfig reads.
struct ConfigSources {
  std::vector<std::string> args;  // argv without argv[0]
  std::vector<std::string> env;   // "NAME=VALUE" (as environ); only TOTEMKVD_* are read
  // Reads --config-file. Null: ReadConfigFileFromDisk.
  std::function<totem::StatusOr<std::string>(const std::string& path)> read_file;
};

// Merges flags, environment and config file (precedence above) into a
// validated config. Help requests come back as InvalidArgument with
// message "help".
totem::StatusOr<ServerConfig> ParseConfig(const ConfigSources& sources);

// ParseConfig with only command-line flags (no environment).
totem::StatusOr<ServerConfig> ParseFlags(const std::vector<std::string>& args);

// Reads a config file of at most 1 MiB. Errors: IO_ERROR naming the path
// (missing, unreadable, too large).
totem::StatusOr<std::string> ReadConfigFileFromDisk(const std::string& path);

// True when `members` holds more than half of `cluster` (ids not in
// `cluster` do not count).
bool HoldsMajority(const std::vector<totem::NodeId>& members,
                   const std::vector<ClusterMember>& cluster);

// Parses `NAME=ID@HOST:PORT[/RING],...` (see the top of this file). Errors
// (INVALID_ARGUMENT, naming the entry): malformed entry, bad id, host,
// port or ring, a name or id reused for another member, a member twice on
// one ring, an address used twice, rings that no chain of gateways joins.
totem::StatusOr<std::vector<ClusterMember>> ParseInitialCluster(const std::string& text);

// "http://127.0.0.1:2379" or "https://127.0.0.1:2379" -> "127.0.0.1:2379", and
// "unix:///run/a.sock" -> "unix:/run/a.sock" (a Unix socket; the path is
// everything after "unix://", as etcd reads it). InvalidArgument otherwise.
totem::StatusOr<std::string> ClientUrlToAddress(const std::string& url);
// Whether a client URL asks for TLS (https://).
bool IsTlsUrl(const std::string& url);

// The usage text printed for --help and after a flag error.
const char* Usage();

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_SERVER_CONFIG_H_

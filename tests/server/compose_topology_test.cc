// The docker-compose topology as real processes (issue 7, "Deploy"): there
// is no Docker engine on our machines, so this test reads
// deploy/docker-compose.yml through `docker-compose config` (the normalized
// file, as Docker would run it) and builds the same network out of Linux
// network namespaces (NetLab, tests/integration/net_lab.h): a bridge for the
// compose network, one namespace per service holding the service's fixed
// ipv4_address on the network's subnet. In each it starts a real totemkvd
// with exactly the service's environment plus the image's ENV lines
// (deploy/Dockerfile), and flags only for what a container gets from its
// mounts: the bind-mounted config file, the data volume and the key secret
// map to per-test paths, and a Unix socket is added to the listen URLs so
// the test (outside the namespaces) can reach every node.
//
// Before starting anything it checks that the compose file, the image and
// the config file agree, as totemkvd itself resolves them (ParseConfig):
// each service is a member of the initial cluster at its own address, the
// key file is the mounted secret, the data dir is a volume, the published
// container port is a listen port. Then: put and get through every node
// over TCP at its compose address (etcdctl run inside the namespaces), kill
// -9 a node and restart it on its data, cut one node off with iptables
// (it must refuse writes for want of a quorum while the others go on), heal,
// and check convergence: one ring of all, every write everywhere, equal
// store checksums (Admin.GetStoreChecksum). A second case runs the README's
// backup and restore: a cold copy of one member's data dir rebuilds the
// whole cluster.
//
// MultiRingComposeTest does the same for deploy/docker-compose.multiring.yml:
// a bridge per compose network (ring1, ring2), the gateway's namespace with
// a veth on each, the initial cluster's rings matching the networks; put and
// get through every node, kill -9 a ring2 node and restart it, cut ring2 off
// from the gateway (the ring1 side, 3 of 5, goes on; n3 and n4 refuse
// writes for want of a quorum), heal, and every node in the primary
// component with every acknowledged write and equal checksums.
//
// Skips when not root, when namespaces cannot be built and
// TOTEMKV_SKIP_NETNS=1, or when docker-compose (scripts/setup.sh installs
// it) is missing.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../integration/net_lab.h"
#include "../integration/test_util.h"
#include "cluster_harness.h"
#include "etcd/rpc.grpc.pb.h"
#include "netns_cluster.h"
#include "server_config.h"

namespace totemkv::testing {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;
using totem::testing::NetLab;
using totem::testing::RunCommand;

constexpr const char* kKeygenBin = TOTEM_KEYGEN_BIN;
constexpr const char* kSourceDir = TOTEMKV_SOURCE_DIR;

std::string ComposeFile() { return std::string(kSourceDir) + "/deploy/docker-compose.yml"; }
std::string MultiRingComposeFile() {
  return std::string(kSourceDir) + "/deploy/docker-compose.multiring.yml";
}
std::string Dockerfile() { return std::string(kSourceDir) + "/deploy/Dockerfile"; }

// One service of the normalized compose file.
struct ComposeService {
  std::string name;
  std::string address;  // ipv4_address on its first network (by name)
  // (network index in ComposeTopology::networks, ipv4_address there), by
  // network name.
  std::vector<std::pair<size_t, std::string>> attachments;
  std::map<std::string, std::string> environment;  // as the container gets it
  std::map<std::string, std::string> binds;        // container path -> host path
  std::vector<std::string> volume_targets;         // named volumes' container paths
  std::vector<std::string> secret_paths;           // /run/secrets/...
  std::vector<uint16_t> published_container_ports;
};

struct ComposeNetwork {
  std::string name;
  std::string subnet;  // CIDR
  int prefix_len = 0;
};

struct ComposeTopology {
  std::vector<ComposeNetwork> networks;  // by name
  std::vector<ComposeService> services;  // by name
};

std::string ScalarText(const Value& v) {
  switch (v.kind_case()) {
    case Value::kStringValue:
      return v.string_value();
    case Value::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case Value::kNumberValue: {
      std::ostringstream s;
      s << v.number_value();
      return s.str();
    }
    default:
      return "";
  }
}

const Value* Field(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? nullptr : &it->second;
}

std::vector<std::string> SplitOn(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, sep)) out.push_back(part);
  return out;
}

// Reads the compose file as `docker-compose config` normalizes it (YAML,
// turned into JSON by python3-yaml, a dependency of docker-compose, then
// into a protobuf Struct). Both the short string forms docker-compose 1.x
// prints and the long mapping forms of Compose v2 are understood.
// Returns "" or why it could not.
std::string LoadTopology(const std::string& file, const std::string& dir, ComposeTopology* topo) {
  const std::string yaml = dir + "/compose.yml";
  const std::string json = dir + "/compose.json";
  const std::string log = dir + "/compose.log";
  const int rc = RunCommand(
      {"/bin/sh", "-c",
       "docker-compose -f '" + file + "' config > '" + yaml + "' 2> '" + dir + "/compose.err'"},
      log, std::chrono::seconds(60));
  if (rc != 0) {
    return "docker-compose -f " + file + " config failed (exit " + std::to_string(rc) +
           "): " + ReadFile(dir + "/compose.err") + ReadFile(log);
  }
  if (RunCommand({"python3", "-c",
                  "import json, sys, yaml\n"
                  "json.dump(yaml.safe_load(open(sys.argv[1])), open(sys.argv[2], 'w'))",
                  yaml, json},
                 log) != 0) {
    return "YAML -> JSON: " + ReadFile(log);
  }
  Struct root;
  const auto parsed = google::protobuf::util::JsonStringToMessage(ReadFile(json), &root);
  if (!parsed.ok()) return "compose JSON: " + parsed.ToString();

  const Value* networks = Field(root, "networks");
  if (networks == nullptr || networks->struct_value().fields_size() == 0) {
    return "no networks in the compose file";
  }
  for (const auto& [net_name, net] : networks->struct_value().fields()) {
    ComposeNetwork cn;
    cn.name = net_name;
    const Value* ipam = Field(net.struct_value(), "ipam");
    const Value* ipam_config = ipam ? Field(ipam->struct_value(), "config") : nullptr;
    if (ipam_config == nullptr || ipam_config->list_value().values_size() != 1) {
      return "network " + net_name + ": want one ipam config entry with a subnet";
    }
    const Value* subnet = Field(ipam_config->list_value().values(0).struct_value(), "subnet");
    cn.subnet = subnet ? subnet->string_value() : "";
    const size_t slash = cn.subnet.find('/');
    if (slash == std::string::npos) return "network " + net_name + ": no subnet CIDR";
    cn.prefix_len = std::atoi(cn.subnet.c_str() + slash + 1);
    topo->networks.push_back(std::move(cn));
  }
  std::sort(topo->networks.begin(), topo->networks.end(),
            [](const ComposeNetwork& a, const ComposeNetwork& b) { return a.name < b.name; });

  const Value* services = Field(root, "services");
  if (services == nullptr) return "no services";
  for (const auto& [name, sv] : services->struct_value().fields()) {
    const Struct& s = sv.struct_value();
    ComposeService svc;
    svc.name = name;
    const Value* nets = Field(s, "networks");
    for (size_t k = 0; nets != nullptr && k < topo->networks.size(); ++k) {
      const Value* on_net = Field(nets->struct_value(), topo->networks[k].name);
      if (on_net == nullptr) continue;
      const Value* addr = Field(on_net->struct_value(), "ipv4_address");
      if (addr == nullptr) {
        return "service " + name + ": no ipv4_address on " + topo->networks[k].name;
      }
      svc.attachments.emplace_back(k, addr->string_value());
    }
    if (svc.attachments.empty()) return "service " + name + ": on no network with an address";
    svc.address = svc.attachments.front().second;
    if (const Value* env = Field(s, "environment")) {
      for (const auto& [k, v] : env->struct_value().fields()) svc.environment[k] = ScalarText(v);
    }
    if (const Value* vols = Field(s, "volumes")) {
      for (const Value& v : vols->list_value().values()) {
        std::string type, source, target;
        if (v.has_struct_value()) {
          const Struct& m = v.struct_value();
          type = Field(m, "type") ? Field(m, "type")->string_value() : "";
          source = Field(m, "source") ? Field(m, "source")->string_value() : "";
          target = Field(m, "target") ? Field(m, "target")->string_value() : "";
        } else {
          const std::vector<std::string> parts = SplitOn(v.string_value(), ':');
          if (parts.size() < 2) return "service " + name + ": volume '" + v.string_value() + "'";
          source = parts[0];
          target = parts[1];
          type = !source.empty() && source[0] == '/' ? "bind" : "volume";
        }
        if (type == "bind") {
          svc.binds[target] = source;
        } else {
          svc.volume_targets.push_back(target);
        }
      }
    }
    if (const Value* secrets = Field(s, "secrets")) {
      for (const Value& v : secrets->list_value().values()) {
        std::string target = v.string_value();
        if (v.has_struct_value()) {
          const Value* t = Field(v.struct_value(), "target");
          const Value* src = Field(v.struct_value(), "source");
          target = t ? t->string_value() : (src ? src->string_value() : "");
        }
        svc.secret_paths.push_back(target.rfind('/', 0) == 0 ? target : "/run/secrets/" + target);
      }
    }
    if (const Value* ports = Field(s, "ports")) {
      for (const Value& v : ports->list_value().values()) {
        std::string container;
        if (v.has_struct_value()) {
          container = ScalarText(*Field(v.struct_value(), "target"));
        } else {
          std::vector<std::string> parts = SplitOn(v.string_value(), ':');
          container = SplitOn(parts.back(), '/')[0];
        }
        svc.published_container_ports.push_back(
            static_cast<uint16_t>(std::atoi(container.c_str())));
      }
    }
    topo->services.push_back(std::move(svc));
  }
  std::sort(topo->services.begin(), topo->services.end(),
            [](const ComposeService& a, const ComposeService& b) { return a.name < b.name; });
  return "";
}

// The runtime stage's `ENV K=V` lines of the Dockerfile (the last FROM
// on), which every container of the image gets.
std::map<std::string, std::string> ImageEnvironment() {
  std::map<std::string, std::string> env;
  std::istringstream in(ReadFile(Dockerfile()));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("FROM ", 0) == 0) env.clear();
    if (line.rfind("ENV ", 0) != 0) continue;
    for (const std::string& kv : SplitOn(line.substr(4), ' ')) {
      const size_t eq = kv.find('=');
      if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  return env;
}

// What totemkvd makes of a container's settings (image ENV + service
// environment + the mounted config file), resolved as the server does.
totem::StatusOr<server::ServerConfig> ContainerConfig(
    const ComposeService& svc, const std::map<std::string, std::string>& env) {
  server::ConfigSources sources;
  for (const auto& [k, v] : env) sources.env.push_back(k + "=" + v);
  sources.read_file = [&svc](const std::string& path) -> totem::StatusOr<std::string> {
    auto it = svc.binds.find(path);
    if (it == svc.binds.end()) {
      return totem::IoError("config file " + path + " is not mounted into the container");
    }
    return server::ReadConfigFileFromDisk(it->second);
  };
  return server::ParseConfig(sources);
}

// One --initial-cluster entry, NAME=ID@HOST:PORT[/RING] (ring 1 without
// /RING), as the compose file spells it.
struct ClusterEntry {
  std::string name;
  std::string host;
  std::string ring = "1";
};

std::vector<ClusterEntry> ClusterEntries(const std::string& text) {
  std::vector<ClusterEntry> out;
  for (const std::string& entry : SplitOn(text, ',')) {
    ClusterEntry e;
    const size_t eq = entry.find('=');
    const size_t at = entry.find('@');
    const size_t colon = entry.find(':', at == std::string::npos ? 0 : at);
    const size_t slash = entry.find('/', colon == std::string::npos ? 0 : colon);
    e.name = entry.substr(0, eq);
    if (at != std::string::npos && colon != std::string::npos) {
      e.host = entry.substr(at + 1, colon - at - 1);
    }
    if (slash != std::string::npos) e.ring = entry.substr(slash + 1);
    out.push_back(std::move(e));
  }
  return out;
}

// The initial cluster matches the networks (a failed EXPECT names each
// mismatch): every service is listed at its address on each of its
// networks, every entry is such an address of its service, and each network
// carries one ring of its own.
void ExpectRingsMatchNetworks(const ComposeTopology& topo, const std::string& initial_cluster) {
  const std::vector<ClusterEntry> entries = ClusterEntries(initial_cluster);
  std::map<size_t, std::string> ring_of_network;
  std::map<std::string, size_t> network_of_ring;
  for (const ComposeService& svc : topo.services) {
    for (const auto& [k, address] : svc.attachments) {
      const std::string& net = topo.networks[k].name;
      auto it = std::find_if(entries.begin(), entries.end(), [&](const ClusterEntry& e) {
        return e.name == svc.name && e.host == address;
      });
      if (it == entries.end()) {
        ADD_FAILURE() << svc.name << ": no --initial-cluster entry at its " << net << " address "
                      << address;
        continue;
      }
      auto [r, new_net] = ring_of_network.emplace(k, it->ring);
      EXPECT_EQ(r->second, it->ring) << svc.name << " on " << net << ": ring " << it->ring
                                     << ", but others on " << net << " are on ring " << r->second;
      auto [n, new_ring] = network_of_ring.emplace(it->ring, k);
      EXPECT_EQ(n->second, k) << "ring " << it->ring << " is on two networks, "
                              << topo.networks[n->second].name << " and " << net;
    }
  }
  for (const ClusterEntry& e : entries) {
    bool known = false;
    for (const ComposeService& svc : topo.services) {
      for (const auto& [k, address] : svc.attachments) {
        known |= svc.name == e.name && address == e.host;
      }
    }
    EXPECT_TRUE(known) << "--initial-cluster lists " << e.name << " at " << e.host
                       << ", not an address of that service";
  }
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// Every node answers Admin.GetRing saying it is in the store's primary
// component, its ring not in transition. `why` says who did not.
bool PrimaryOfAll(const std::vector<NodeChannel>& nodes, std::string* why) {
  for (const NodeChannel& n : nodes) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    totemkv::admin::v1::GetRingResponse resp;
    const grpc::Status s = totemkv::admin::v1::Admin::NewStub(n.channel)->GetRing(&ctx, {}, &resp);
    if (!s.ok()) {
      *why = n.name + ": GetRing: " + s.error_message();
      return false;
    }
    if (!resp.primary() || resp.in_transition()) {
      *why = n.name + (resp.primary() ? ": ring in transition" : ": not in the primary component");
      return false;
    }
  }
  return true;
}

// The compose services as totemkvd processes in a NetLab, node i = the
// i-th service by name.
class ComposeCluster {
 public:
  ComposeCluster(const std::string& dir, const NetLab& lab, const ComposeTopology& topo)
      : dir_(dir), lab_(lab), topo_(topo), children_(topo.services.size()) {}

  // Resolves each container's config and checks it against the topology
  // (a failed EXPECT names each mismatch); false if a node cannot start.
  bool Init(std::string* error) {
    key_ = dir_ + "/cluster.key";
    if (RunCommand({kKeygenBin, key_}, dir_ + "/keygen.log") != 0) {
      *error = "totem-keygen failed: " + ReadFile(dir_ + "/keygen.log");
      return false;
    }
    const std::map<std::string, std::string> image_env = ImageEnvironment();
    std::set<std::string> checked_clusters;  // each distinct --initial-cluster once
    for (const ComposeService& svc : topo_.services) {
      std::map<std::string, std::string> env = image_env;
      for (const auto& [k, v] : svc.environment) env[k] = v;
      envs_.push_back(env);
      totem::StatusOr<server::ServerConfig> c = ContainerConfig(svc, env);
      if (!c.ok()) {
        *error = "service " + svc.name + ": totemkvd would not start: " + c.status().message();
        return false;
      }
      const server::ClusterMember* self = c->Self();
      if (topo_.networks.size() == 1) {
        EXPECT_EQ(self->host, svc.address)
            << svc.name << ": its --initial-cluster entry is not its ipv4_address";
      }
      auto ic = env.find("TOTEMKVD_INITIAL_CLUSTER");
      if (ic == env.end()) {
        ADD_FAILURE() << svc.name << ": no TOTEMKVD_INITIAL_CLUSTER in its environment";
      } else if (checked_clusters.insert(ic->second).second) {
        ExpectRingsMatchNetworks(topo_, ic->second);
      }
      EXPECT_TRUE(Contains(svc.secret_paths, c->key_file))
          << svc.name << ": key-file " << c->key_file << " is not a mounted secret";
      EXPECT_TRUE(Contains(svc.volume_targets, c->data_dir))
          << svc.name << ": data-dir " << c->data_dir << " is not a volume";
      EXPECT_EQ(c->cluster.size(), topo_.services.size())
          << svc.name << ": --initial-cluster does not list every service";
      for (uint16_t port : svc.published_container_ports) {
        bool listened = false;
        for (const std::string& a : c->listen_addresses) {
          listened |= a.substr(a.rfind(':') + 1) == std::to_string(port);
        }
        EXPECT_TRUE(listened) << svc.name << ": publishes container port " << port
                              << " but listens on " << Join(c->listen_addresses, ",");
      }
      if (c->listen_addresses.empty()) {
        *error = svc.name + ": no listen address";
        return false;
      }
      const std::string& first = c->listen_addresses[0];
      client_ports_.push_back(first.substr(first.rfind(':') + 1));
      configs_.push_back(std::move(*c));
      channels_.push_back(UnixSocketChannel(SocketPath(channels_.size())));
    }
    return true;
  }

  void Start(size_t i) {
    ++incarnation_[i];
    std::vector<std::string> argv = lab_.ExecPrefix(i);
    argv.insert(argv.end(), {"env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin"});
    for (const auto& [k, v] : envs_[i]) argv.push_back(k + "=" + v);
    const server::ServerConfig& c = configs_[i];
    argv.push_back(TOTEMKVD_BIN);
    if (!c.config_file.empty()) {
      argv.insert(argv.end(), {"--config-file", topo_.services[i].binds.at(c.config_file)});
    }
    argv.insert(argv.end(), {"--data-dir", DataDir(i), "--key-file", key_, "--listen-client-urls",
                             Join(c.listen_client_urls, ",") + ",unix://" + SocketPath(i)});
    log_of_[i] = dir_ + "/" + Name(i) + "." + std::to_string(incarnation_[i]) + ".log";
    std::error_code ec;
    std::filesystem::remove(SocketPath(i), ec);  // left by a killed incarnation
    children_[i] = std::make_unique<Child>(argv, log_of_[i]);
    // A fresh channel per incarnation, made once the server serves (its
    // socket exists): a channel that saw the previous incarnation stop, or
    // that tried the socket before the server was up, can take seconds to
    // reconnect.
    WaitFor([&] { return std::filesystem::exists(SocketPath(i), ec) || !Running(i); },
            std::chrono::seconds(10));
    channels_[i] = UnixSocketChannel(SocketPath(i));
  }
  void Kill(size_t i) { children_[i].reset(); }
  // SIGTERM, as `docker compose stop`; true if the node exited cleanly
  // within 15 s.
  bool Stop(size_t i) { return StopAll({i}).empty(); }
  // Stop() of several nodes at once (as `docker compose stop`); returns
  // the ones that did not exit cleanly.
  std::vector<size_t> StopAll(const std::vector<size_t>& nodes) {
    for (size_t i : nodes) {
      if (children_[i] != nullptr) children_[i]->Signal(SIGTERM);
    }
    std::vector<size_t> unclean;
    for (size_t i : nodes) {
      if (children_[i] == nullptr) continue;
      const std::optional<int> rc = children_[i]->Wait(std::chrono::seconds(15));
      children_[i].reset();
      if (!rc.has_value() || *rc != 0) unclean.push_back(i);
    }
    return unclean;
  }
  std::string DataDir(size_t i) const { return dir_ + "/" + Name(i) + "-data"; }
  bool Running(size_t i) {
    return children_[i] != nullptr && !children_[i]->Wait(std::chrono::milliseconds(0)).has_value();
  }

  size_t size() const { return topo_.services.size(); }
  const std::string& Name(size_t i) const { return topo_.services[i].name; }
  // The node of service `name`; size() if there is none.
  size_t Index(const std::string& name) const {
    size_t i = 0;
    while (i < size() && Name(i) != name) ++i;
    return i;
  }
  std::string SocketPath(size_t i) const { return dir_ + "/" + Name(i) + ".sock"; }
  std::unique_ptr<etcdserverpb::KV::Stub> Kv(size_t i) const {
    return etcdserverpb::KV::NewStub(channels_[i]);
  }
  std::vector<NodeChannel> Channels() const {
    std::vector<NodeChannel> nodes;
    for (size_t i = 0; i < size(); ++i) nodes.push_back({Name(i), channels_[i]});
    return nodes;
  }
  // The etcd endpoint of node i at its compose address, as another
  // container on the network reaches it.
  std::string Endpoint(size_t i) const {
    return "http://" + topo_.services[i].address + ":" + client_ports_[i];
  }

  // etcdctl run inside node `from`'s namespace against `endpoint`:
  // exit code and output.
  std::pair<int, std::string> Etcdctl(size_t from, const std::string& endpoint,
                                      const std::vector<std::string>& args) {
    const std::string log = dir_ + "/etcdctl" + std::to_string(etcdctl_runs_++) + ".log";
    std::vector<std::string> argv = lab_.ExecPrefix(from);
    argv.insert(argv.end(), {"env", "ETCDCTL_API=3", "etcdctl", "--dial-timeout=2s",
                             "--command-timeout=5s", "--endpoints=" + endpoint});
    argv.insert(argv.end(), args.begin(), args.end());
    const int rc = RunCommand(argv, log, std::chrono::seconds(15));
    return {rc, ReadFile(log)};
  }

  std::string LogTails(size_t lines) const {
    std::string s;
    for (const auto& [i, log] : log_of_) {
      s += "---- " + Name(i) + " (" + log + ")\n" + Tail(ReadFile(log), lines);
    }
    return s;
  }

 private:
  std::string dir_;
  const NetLab& lab_;
  const ComposeTopology& topo_;
  std::string key_;
  std::vector<std::map<std::string, std::string>> envs_;
  std::vector<server::ServerConfig> configs_;
  std::vector<std::string> client_ports_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<Child>> children_;
  std::map<size_t, int> incarnation_;     // node -> starts so far
  std::map<size_t, std::string> log_of_;  // node -> current log
  int etcdctl_runs_ = 0;
};

class ComposeTopologyTest : public ::testing::Test {
 protected:
  virtual std::string ComposePath() const { return ComposeFile(); }

  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "the compose topology test builds network namespaces: it needs root";
    }
    ASSERT_FALSE(dir_.path().empty());
    if (RunCommand({"docker-compose", "version"}, dir_.path() + "/dc.log") != 0) {
      GTEST_SKIP() << "docker-compose is not installed (Debian package docker-compose; "
                      "scripts/setup.sh installs it)";
    }
    const std::string why = LoadTopology(ComposePath(), dir_.path(), &topo_);
    ASSERT_EQ(why, "");
    ASSERT_GE(topo_.services.size(), 3u) << "want a cluster of at least three services";
    // A bridge per compose network, a namespace per service with a veth on
    // each of its networks.
    std::vector<int> prefix_lens;
    for (const ComposeNetwork& net : topo_.networks) prefix_lens.push_back(net.prefix_len);
    std::vector<std::vector<NetLab::Attachment>> attachments;
    for (const ComposeService& s : topo_.services) {
      attachments.emplace_back();
      for (const auto& [k, address] : s.attachments) attachments.back().push_back({k, address});
    }
    lab_ = std::make_unique<NetLab>(dir_, prefix_lens, attachments);
    std::string error;
    if (!lab_->Create(&error)) {
      const char* skip = std::getenv("TOTEMKV_SKIP_NETNS");
      if (skip != nullptr && std::string(skip) == "1") {
        GTEST_SKIP() << "cannot build the namespace network (TOTEMKV_SKIP_NETNS=1): " << error;
      }
      FAIL() << "cannot build the namespace network (needs root, ip and iptables; set "
                "TOTEMKV_SKIP_NETNS=1 to skip): "
             << error;
    }
    cluster_ = std::make_unique<ComposeCluster>(dir_.path(), *lab_, topo_);
    ASSERT_TRUE(cluster_->Init(&error)) << error;
    ASSERT_FALSE(HasFailure()) << "the compose file, the image and the config file disagree";
    for (size_t i = 0; i < cluster_->size(); ++i) cluster_->Start(i);
    ASSERT_TRUE(WaitForRing(seconds(30))) << cluster_->LogTails(30);
  }

  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) {
      std::fprintf(stderr, "%s\n(TOTEMKV_KEEP_TEST_DIR=1 keeps every log)\n",
                   cluster_->LogTails(40).c_str());
    }
    cluster_.reset();  // servers die before their namespaces go
    lab_.reset();
  }

  // One ring of all; with several networks (one ring each), one global
  // configuration of all (GetRing reports the multi-ring layer's global
  // configuration) and every node in the primary component.
  bool WaitForRing(milliseconds timeout) {
    if (topo_.networks.size() > 1) {
      return WaitFor(
          [&] {
            return RingOfAll(cluster_->Channels(), &ring_why_) &&
                   PrimaryOfAll(cluster_->Channels(), &ring_why_);
          },
          timeout);
    }
    return WaitFor([&] { return RingOfAll(cluster_->Channels(), &ring_why_); }, timeout);
  }

  // A put through node i, retried until acknowledged (the ring may be
  // re-forming) or `timeout` passes.
  grpc::Status PutEventually(size_t i, const std::string& key, const std::string& value,
                             milliseconds timeout) {
    auto kv = cluster_->Kv(i);
    grpc::Status last;
    WaitFor(
        [&] {
          etcdserverpb::PutResponse resp;
          last = Put(*kv, key, value, &resp, milliseconds(1000));
          return last.ok();
        },
        timeout);
    return last;
  }

  // Node i holds `key` = `value`: a linearizable read there, polled.
  bool HasValue(size_t i, const std::string& key, const std::string& value, milliseconds timeout) {
    auto kv = cluster_->Kv(i);
    return WaitFor(
        [&] {
          std::map<std::string, std::pair<std::string, int64_t>> out;
          if (!RangePrefix(*kv, key, /*serializable=*/false, &out).ok()) return false;
          auto it = out.find(key);
          return it != out.end() && it->second.first == value;
        },
        timeout);
  }

  // etcdctl inside every node's namespace: a put at node i over TCP at its
  // compose address, then a get of it at every node.
  void PutGetThroughEveryNode(const std::string& prefix) {
    for (size_t i = 0; i < cluster_->size(); ++i) {
      const std::string key = prefix + cluster_->Name(i);
      const std::string value = "via " + cluster_->Endpoint(i);
      auto [rc, out] = cluster_->Etcdctl(i, cluster_->Endpoint(i), {"put", key, value});
      ASSERT_EQ(rc, 0) << "etcdctl put at " << cluster_->Endpoint(i) << ": " << out;
      for (size_t j = 0; j < cluster_->size(); ++j) {
        auto [grc, got] = cluster_->Etcdctl(j, cluster_->Endpoint(j), {"get", key});
        EXPECT_EQ(grc, 0) << "etcdctl get at " << cluster_->Endpoint(j) << ": " << got;
        EXPECT_EQ(got, key + "\n" + value + "\n")
            << cluster_->Name(j) << " after a put at " << cluster_->Name(i);
      }
    }
  }

  void ExpectChecksumsEqual() {
    std::vector<totemkv::admin::v1::GetStoreChecksumResponse> sums;
    std::string table;
    const bool equal = WaitFor(
        [&] { return StoreChecksumsEqual(cluster_->Channels(), &sums, &table); }, seconds(15));
    EXPECT_TRUE(equal) << "the stores differ:\n" << table;
    std::printf("store checksums:\n%s", table.c_str());
  }

  TempDir dir_;
  ComposeTopology topo_;
  std::unique_ptr<NetLab> lab_;
  std::unique_ptr<ComposeCluster> cluster_;
  std::string ring_why_;
};

TEST_F(ComposeTopologyTest, ComposeCluster_PutGetKillPartitionHeal_Converges) {
  const size_t n = cluster_->size();
  ASSERT_EQ(topo_.networks.size(), 1u) << ComposePath() << ": want one network (one ring)";
  std::printf("compose network %s %s:", topo_.networks[0].name.c_str(),
              topo_.networks[0].subnet.c_str());
  for (size_t i = 0; i < n; ++i) {
    std::printf(" %s=%s", cluster_->Name(i).c_str(), cluster_->Endpoint(i).c_str());
  }
  std::printf("\n");

  // 1. Put and get through every node, over the compose network.
  PutGetThroughEveryNode("compose/up/");

  // 2. kill -9 the last node: the others still take writes; restarted on
  // its data, it rejoins and has them.
  const size_t victim = n - 1;
  cluster_->Kill(victim);
  for (size_t i = 0; i < victim; ++i) {
    const std::string key = "compose/kill/" + cluster_->Name(i);
    const grpc::Status s = PutEventually(i, key, "while down", seconds(10));
    ASSERT_TRUE(s.ok()) << cluster_->Name(i) << " refused a put while " << cluster_->Name(victim)
                        << " was down: " << s.error_message();
  }
  cluster_->Start(victim);
  ASSERT_TRUE(WaitForRing(seconds(20))) << "no ring of all after the restart: " << ring_why_;
  for (size_t i = 0; i < victim; ++i) {
    EXPECT_TRUE(HasValue(victim, "compose/kill/" + cluster_->Name(i), "while down", seconds(10)))
        << "the restarted " << cluster_->Name(victim) << " lacks a write made while it was down";
  }

  // 3. Cut node 0 off from the others (every protocol, inside the
  // namespaces): it refuses writes for want of a quorum and still serves
  // serializable reads; the majority goes on.
  std::vector<size_t> rest;
  for (size_t i = 1; i < n; ++i) rest.push_back(i);
  std::string error;
  ASSERT_TRUE(lab_->Partition({0}, rest, &error)) << error;
  auto kv0 = cluster_->Kv(0);
  grpc::Status last;
  const bool refused = WaitFor(
      [&] {
        etcdserverpb::PutResponse resp;
        last = Put(*kv0, "compose/partition/minority", "must not stick", &resp, milliseconds(1000));
        return last.error_code() == grpc::StatusCode::UNAVAILABLE &&
               last.error_message().find("quorum") != std::string::npos;
      },
      seconds(10));
  EXPECT_TRUE(refused) << cluster_->Name(0)
                       << " (cut off) did not refuse a write for want of a quorum; last: code "
                       << last.error_code() << " " << last.error_message();
  {
    std::map<std::string, std::pair<std::string, int64_t>> out;
    const grpc::Status s = RangePrefix(*kv0, "compose/", /*serializable=*/true, &out);
    EXPECT_TRUE(s.ok()) << cluster_->Name(0)
                        << " refused a serializable read: " << s.error_message();
  }
  const grpc::Status majority = PutEventually(1, "compose/partition/majority", "ok", seconds(10));
  EXPECT_TRUE(majority.ok()) << "the majority refused a write: " << majority.error_message();

  // 4. Heal: one ring of all again, the majority's write everywhere, equal
  // stores, and put/get through every node over the network once more.
  ASSERT_TRUE(lab_->Heal(&error)) << error;
  ASSERT_TRUE(WaitForRing(seconds(20))) << "no ring of all after healing: " << ring_why_;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_TRUE(HasValue(i, "compose/partition/majority", "ok", seconds(10)))
        << cluster_->Name(i) << " lacks the write made during the partition";
  }
  PutGetThroughEveryNode("compose/healed/");
  ExpectChecksumsEqual();
  for (size_t i = 0; i < n; ++i) {
    EXPECT_TRUE(cluster_->Running(i)) << cluster_->Name(i) << " exited";
  }
}

// The README's offline backup and restore (the online one, with
// Maintenance.Snapshot, is tests/server/snapshot_test.cc): a cold copy of one member's data dir,
// taken while only that member is stopped, rebuilds the whole cluster: the member it came from gets
// it back, the others start empty, and all serve the backup's state (and not the writes made after
// it).
TEST_F(ComposeTopologyTest, ComposeCluster_RestoreAllFromOneMembersCopy_ServesTheCopy) {
  const size_t n = cluster_->size();
  const size_t from = n - 1;
  ASSERT_TRUE(PutEventually(0, "compose/backup/before", "in the copy", seconds(10)).ok());
  ASSERT_TRUE(HasValue(from, "compose/backup/before", "in the copy", seconds(10)));

  ASSERT_TRUE(cluster_->Stop(from)) << cluster_->Name(from) << " did not stop cleanly on SIGTERM";
  const std::string backup = dir_.path() + "/backup";
  std::error_code ec;
  std::filesystem::copy(cluster_->DataDir(from), backup, std::filesystem::copy_options::recursive,
                        ec);
  ASSERT_FALSE(ec) << "copying " << cluster_->DataDir(from) << ": " << ec.message();
  cluster_->Start(from);
  ASSERT_TRUE(WaitForRing(seconds(20))) << "no ring of all after the backup: " << ring_why_;
  ASSERT_TRUE(PutEventually(0, "compose/backup/after", "not in the copy", seconds(10)).ok());

  // Disaster: every node stops; the cluster is rebuilt from the copy.
  std::vector<size_t> all;
  for (size_t i = 0; i < n; ++i) all.push_back(i);
  const std::vector<size_t> unclean = cluster_->StopAll(all);
  EXPECT_TRUE(unclean.empty()) << unclean.size() << " node(s) did not stop cleanly on SIGTERM";
  for (size_t i = 0; i < n; ++i) {
    std::filesystem::remove_all(cluster_->DataDir(i), ec);
    ASSERT_FALSE(ec) << ec.message();
  }
  std::filesystem::copy(backup, cluster_->DataDir(from), std::filesystem::copy_options::recursive,
                        ec);
  ASSERT_FALSE(ec) << "restoring: " << ec.message();
  for (size_t i = 0; i < n; ++i) cluster_->Start(i);
  ASSERT_TRUE(WaitForRing(seconds(30))) << "no ring of all after the restore: " << ring_why_;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_TRUE(HasValue(i, "compose/backup/before", "in the copy", seconds(15)))
        << cluster_->Name(i) << " does not serve the restored state";
    std::map<std::string, std::pair<std::string, int64_t>> out;
    ASSERT_TRUE(RangePrefix(*cluster_->Kv(i), "compose/backup/after", true, &out).ok());
    EXPECT_TRUE(out.empty()) << cluster_->Name(i) << " has a write made after the copy";
  }
  ExpectChecksumsEqual();
  PutGetThroughEveryNode("compose/restored/");
}

// deploy/docker-compose.multiring.yml: two networks, a ring on each, the
// gateway container on both.
class MultiRingComposeTest : public ComposeTopologyTest {
 protected:
  std::string ComposePath() const override { return MultiRingComposeFile(); }

  // Node of service `name`, failing the test if there is none.
  size_t Node(const std::string& name) {
    const size_t i = cluster_->Index(name);
    EXPECT_LT(i, cluster_->size()) << ComposePath() << " has no service " << name;
    return std::min(i, cluster_->size() - 1);
  }

  // A put through node i that must be acknowledged; remembered for the
  // final check.
  void MustPut(size_t i, const std::string& key, const std::string& value) {
    const grpc::Status s = PutEventually(i, key, value, seconds(10));
    EXPECT_TRUE(s.ok()) << cluster_->Name(i) << " refused the put of " << key << ": "
                        << s.error_message();
    if (s.ok()) acked_[key] = value;
  }

  // Node i refuses writes for want of a quorum (UNAVAILABLE, "quorum").
  void ExpectRefusesWrites(size_t i) {
    auto kv = cluster_->Kv(i);
    grpc::Status last;
    const bool refused = WaitFor(
        [&] {
          etcdserverpb::PutResponse resp;
          last = Put(*kv, "mring/partition/minority/" + cluster_->Name(i), "must not stick", &resp,
                     milliseconds(1000));
          return last.error_code() == grpc::StatusCode::UNAVAILABLE &&
                 last.error_message().find("quorum") != std::string::npos;
        },
        seconds(10));
    EXPECT_TRUE(refused) << cluster_->Name(i)
                         << " (cut off with its ring) did not refuse a write for want of a "
                            "quorum; last: code "
                         << last.error_code() << " " << last.error_message();
  }

  std::map<std::string, std::string> acked_;  // key -> value of every acknowledged put
};

TEST_F(MultiRingComposeTest, TwoRingsAndGateway_PutGetKillPartitionHeal_Converges) {
  const size_t n = cluster_->size();
  ASSERT_EQ(topo_.networks.size(), 2u) << ComposePath() << ": want two networks (two rings)";
  for (const ComposeNetwork& net : topo_.networks) {
    std::printf("compose network %s %s:", net.name.c_str(), net.subnet.c_str());
    for (const ComposeService& svc : topo_.services) {
      for (const auto& [k, address] : svc.attachments) {
        if (topo_.networks[k].name == net.name) {
          std::printf(" %s=%s", svc.name.c_str(), address.c_str());
        }
      }
    }
    std::printf("\n");
  }
  const size_t gw = Node("gw");
  const size_t n3 = Node("n3");
  const size_t n4 = Node("n4");
  ASSERT_EQ(topo_.services[gw].attachments.size(), 2u) << "the gateway is not on both networks";
  ASSERT_FALSE(HasFailure());

  // 1. Put and get through every node (etcdctl inside its namespace, at its
  // compose address): writes cross the gateway both ways.
  PutGetThroughEveryNode("mring/up/");

  // 2. kill -9 n3: 4 of 5 remain, every other node takes writes; n3,
  // restarted on its data, rejoins its ring and catches up.
  cluster_->Kill(n3);
  for (size_t i = 0; i < n; ++i) {
    if (i != n3) MustPut(i, "mring/kill/" + cluster_->Name(i), "while n3 was down");
  }
  cluster_->Start(n3);
  ASSERT_TRUE(WaitForRing(seconds(20))) << "not all primary after the restart: " << ring_why_;
  for (size_t i = 0; i < n; ++i) {
    if (i == n3) continue;
    const std::string key = "mring/kill/" + cluster_->Name(i);
    EXPECT_TRUE(HasValue(n3, key, acked_[key], seconds(10)))
        << "the restarted n3 lacks " << key << ", written while it was down";
  }

  // 3. Cut ring2 off from the gateway: {n1, n2, gw} (3 of 5) keep serving
  // writes; {n3, n4} refuse them for want of a quorum and still serve
  // serializable reads.
  std::string error;
  ASSERT_TRUE(lab_->Partition({gw}, {n3, n4}, &error)) << error;
  ExpectRefusesWrites(n3);
  ExpectRefusesWrites(n4);
  {
    std::map<std::string, std::pair<std::string, int64_t>> out;
    const grpc::Status s = RangePrefix(*cluster_->Kv(n3), "mring/", /*serializable=*/true, &out);
    EXPECT_TRUE(s.ok()) << "n3 (cut off) refused a serializable read: " << s.error_message();
  }
  for (size_t i = 0; i < n; ++i) {
    if (i != n3 && i != n4) MustPut(i, "mring/partition/" + cluster_->Name(i), "majority side");
  }

  // 4. Heal: every node primary again, every acknowledged put readable
  // everywhere, equal stores, put/get through every node once more.
  ASSERT_TRUE(lab_->Heal(&error)) << error;
  ASSERT_TRUE(WaitForRing(seconds(20))) << "not all primary after healing: " << ring_why_;
  for (size_t i = 0; i < n; ++i) {
    for (const auto& [key, value] : acked_) {
      EXPECT_TRUE(HasValue(i, key, value, seconds(10)))
          << cluster_->Name(i) << " lacks the acknowledged " << key << "=" << value;
    }
  }
  PutGetThroughEveryNode("mring/healed/");
  ExpectChecksumsEqual();
  for (size_t i = 0; i < n; ++i) {
    EXPECT_TRUE(cluster_->Running(i)) << cluster_->Name(i) << " exited";
  }
}

}  // namespace
}  // namespace totemkv::testing

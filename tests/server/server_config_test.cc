// Unit tests of totemkvd's configuration parsing: the embedded single-node
// default, the --initial-cluster format and its errors, the rules tying
// --name, --node-id and --key-file together, the YAML config file subset,
// precedence flag > environment > file > default, and the --totem-* flags
// with the Totem library's own validation.
#include "server_config.h"

#include <gtest/gtest.h>

namespace totemkv::server {
namespace {

TEST(ServerConfigTest, NoFlagsIsASingleNodeDefault) {
  totem::StatusOr<ServerConfig> c = ParseFlags({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->name, "default");
  EXPECT_EQ(c->data_dir, "default.totemkv");
  EXPECT_EQ(c->listen_addresses, std::vector<std::string>{"127.0.0.1:2379"});
  ASSERT_EQ(c->cluster.size(), 1u);
  EXPECT_EQ(c->node_id, 1u);
  EXPECT_TRUE(c->sync);
  EXPECT_TRUE(c->key_file.empty());
  EXPECT_TRUE(c->restore_snapshot.empty());
}

TEST(ServerConfigTest, RestoreSnapshotFlag) {
  totem::StatusOr<ServerConfig> c =
      ParseFlags({"--data-dir", "/tmp/d", "--restore-snapshot", "/tmp/backup.snap"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->restore_snapshot, "/tmp/backup.snap");
  EXPECT_EQ(c->data_dir, "/tmp/d");
}

TEST(ServerConfigTest, ThreeMembers) {
  totem::StatusOr<ServerConfig> c =
      ParseFlags({"--name", "n2", "--initial-cluster",
                  "n3=30@127.0.0.1:7003,n1=10@127.0.0.1:7001,n2=20@127.0.0.1:7002", "--key-file=k",
                  "--listen-client-urls", "http://127.0.0.1:3002", "--initial-cluster-client-urls",
                  "n1=http://127.0.0.1:3001;http://127.0.0.1:4001", "--sync", "false"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_id, 20u);
  EXPECT_FALSE(c->sync);
  ASSERT_EQ(c->cluster.size(), 3u);
  EXPECT_EQ(c->cluster[0].name, "n1");  // sorted by id
  EXPECT_EQ(c->cluster[0].client_urls.size(), 2u);
  EXPECT_EQ(c->cluster[1].client_urls, std::vector<std::string>{"http://127.0.0.1:3002"});
  EXPECT_TRUE(c->cluster[2].client_urls.empty());
  EXPECT_EQ(c->cluster[2].port, 7003);
}

TEST(ServerConfigTest, ErrorsNameTheProblem) {
  const auto err = [](const std::vector<std::string>& args) {
    totem::StatusOr<ServerConfig> c = ParseFlags(args);
    return c.ok() ? std::string("OK") : c.status().message();
  };
  EXPECT_NE(err({"--initial-cluster", "a=1@127.0.0.1"}).find("malformed"), std::string::npos);
  EXPECT_NE(err({"--name", "a", "--initial-cluster", "a=0@127.0.0.1:1"}).find("node id"),
            std::string::npos);
  EXPECT_NE(err({"--name", "a", "--initial-cluster", "a=1@localhost:1"}).find("IPv4"),
            std::string::npos);
  EXPECT_NE(err({"--name", "a", "--initial-cluster", "a=1@127.0.0.1:1,b=1@127.0.0.1:2",
                 "--key-file", "k"})
                .find("duplicate node id"),
            std::string::npos);
  EXPECT_NE(err({"--name", "c", "--initial-cluster", "a=1@127.0.0.1:1"}).find("not in"),
            std::string::npos);
  EXPECT_NE(err({"--name", "a", "--initial-cluster", "a=1@127.0.0.1:1,b=2@127.0.0.1:2"})
                .find("--key-file is required"),
            std::string::npos);
  EXPECT_NE(err({"--listen-client-urls", "grpc://127.0.0.1:1"}).find("only http://"),
            std::string::npos);
  EXPECT_NE(err({"--bogus", "1"}).find("unknown flag"), std::string::npos);
  EXPECT_NE(err({"--name"}).find("needs a value"), std::string::npos);
  EXPECT_NE(err({"--sync", "maybe"}).find("--sync"), std::string::npos);
  EXPECT_NE(err({"--max-watches", "0"}).find("--max-watches"), std::string::npos);
  EXPECT_NE(
      err({"--watch-progress-notify-interval-ms", "5"}).find("--watch-progress-notify-interval-ms"),
      std::string::npos);
}

TEST(ServerConfigTest, ClientUrlToAddress_HttpAndUnixSockets) {
  EXPECT_EQ(ClientUrlToAddress("http://127.0.0.1:2379").value(), "127.0.0.1:2379");
  EXPECT_EQ(ClientUrlToAddress("http://127.0.0.1:2379/").value(), "127.0.0.1:2379");
  // etcd's reading: the path is everything after "unix://".
  EXPECT_EQ(ClientUrlToAddress("unix:///tmp/d/n1.sock").value(), "unix:/tmp/d/n1.sock");
  EXPECT_EQ(ClientUrlToAddress("unix://n1.sock").value(), "unix:n1.sock");
  EXPECT_FALSE(ClientUrlToAddress("unix://").ok());
  EXPECT_NE(ClientUrlToAddress("unix:///" + std::string(200, 'a'))
                .status()
                .message()
                .find("1 to 107 bytes"),
            std::string::npos);
  EXPECT_EQ(ClientUrlToAddress("https://127.0.0.1:1").value(), "127.0.0.1:1");
  EXPECT_NE(ClientUrlToAddress("grpc://127.0.0.1:1").status().message().find("unix://"),
            std::string::npos);
  EXPECT_FALSE(ClientUrlToAddress("http://127.0.0.1").ok());
  EXPECT_FALSE(ClientUrlToAddress("https://127.0.0.1").ok());
}

TEST(ServerConfigTest, TlsAndMetricsFlags) {
  totem::StatusOr<ServerConfig> c = ParseFlags(
      {"--listen-client-urls", "http://127.0.0.1:1,https://127.0.0.1:2", "--client-cert-file",
       "s.pem", "--client-key-file", "s.key", "--client-cert-auth=true", "--client-trusted-ca-file",
       "ca.pem", "--listen-metrics-urls", "http://127.0.0.1:9"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->listen_tls, (std::vector<bool>{false, true}));
  EXPECT_EQ(c->client_cert_file, "s.pem");
  EXPECT_EQ(c->client_key_file, "s.key");
  EXPECT_EQ(c->client_trusted_ca_file, "ca.pem");
  EXPECT_TRUE(c->client_cert_auth);
  EXPECT_EQ(c->metrics_addresses, std::vector<std::string>{"127.0.0.1:9"});
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--listen-client-urls", "https://127.0.0.1:2"}, "needs --client-cert-file"},
      {{"--client-key-file", "k"}, "--client-key-file: given, but no"},
      {{"--client-cert-auth", "true"}, "--client-cert-auth: true, but no"},
      {{"--listen-client-urls", "https://127.0.0.1:2", "--client-cert-file", "c",
        "--client-key-file", "k", "--client-cert-auth", "yes"},
       "needs --client-trusted-ca-file"},
      {{"--listen-metrics-urls", "unix:///x"}, "--listen-metrics-urls: URL 'unix:///x'"},
      {{"--listen-metrics-urls", "http://127.0.0.1"}, "want http://HOST:PORT"},
  };
  for (const auto& [args, want] : bad) {
    totem::StatusOr<ServerConfig> b = ParseFlags(args);
    ASSERT_FALSE(b.ok()) << want;
    EXPECT_NE(b.status().message().find(want), std::string::npos) << b.status().message();
  }
}

TEST(ServerConfigTest, WatchSettings) {
  totem::StatusOr<ServerConfig> d = ParseFlags({});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->max_watches, 10000u);
  EXPECT_EQ(d->watch_progress_notify_interval_ms, 600000u);
  totem::StatusOr<ServerConfig> c =
      ParseFlags({"--max-watches", "7", "--watch-progress-notify-interval-ms", "250"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->max_watches, 7u);
  EXPECT_EQ(c->watch_progress_notify_interval_ms, 250u);
}

// Parses with a fake file system holding one config file, "cfg.yaml".
totem::StatusOr<ServerConfig> ParseWith(const std::vector<std::string>& args,
                                        const std::vector<std::string>& env,
                                        const std::string& file_text) {
  ConfigSources s;
  s.args = args;
  s.env = env;
  s.read_file = [file_text](const std::string& path) -> totem::StatusOr<std::string> {
    if (path != "cfg.yaml") return totem::IoError("cannot open '" + path + "'");
    return file_text;
  };
  return ParseConfig(s);
}

std::string ErrorOf(const totem::StatusOr<ServerConfig>& c) {
  return c.ok() ? std::string("OK") : c.status().message();
}

TEST(ConfigFileTest, ParseConfigFile_ScalarsCommentsAndQuotes) {
  totem::StatusOr<std::vector<ConfigFileEntry>> e = ParseConfigFile(
      "\xEF\xBB\xBF---\n"
      "# a comment\n"
      "\n"
      "name: n1   # trailing comment\n"
      "data-dir: \"/var/lib/a b\"\r\n"
      "key-file: 'it''s # not a comment'\n"
      "listen-client-urls: http://127.0.0.1:2379,http://127.0.0.1:2479\n"
      "sync:\n"
      "node-id: \"say \\\"hi\\\"\\n\"\n",
      "f.yaml");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  ASSERT_EQ(e->size(), 6u);
  EXPECT_EQ((*e)[0].key, "name");
  EXPECT_EQ((*e)[0].value, "n1");
  EXPECT_EQ((*e)[0].line, 4);
  EXPECT_EQ((*e)[1].value, "/var/lib/a b");
  EXPECT_EQ((*e)[2].value, "it's # not a comment");
  EXPECT_EQ((*e)[3].value, "http://127.0.0.1:2379,http://127.0.0.1:2479");
  EXPECT_EQ((*e)[4].value, "");
  EXPECT_EQ((*e)[5].value, "say \"hi\"\n");
}

TEST(ConfigFileTest, ParseConfigFile_MalformedLinesNameTheLine) {
  const auto err = [](const std::string& text) {
    auto e = ParseConfigFile(text, "f.yaml");
    return e.ok() ? std::string("OK") : e.status().message();
  };
  EXPECT_EQ(err("name: a\nnonsense\n"),
            "config file f.yaml line 2: malformed line (want 'key: value')");
  EXPECT_EQ(err("name:a\n"), "config file f.yaml line 1: malformed line (want 'key: value')");
  EXPECT_NE(err("totem:\n  window: 3\n").find("line 2: indented line"), std::string::npos);
  EXPECT_NE(err("- a\n").find("line 1: lists are not supported"), std::string::npos);
  EXPECT_NE(err("name: a\nname: b\n").find("line 2: key 'name' repeated (first on line 1)"),
            std::string::npos);
  EXPECT_NE(err("name: \"abc\n").find("unterminated double-quoted"), std::string::npos);
  EXPECT_NE(err("name: 'abc\n").find("unterminated single-quoted"), std::string::npos);
  EXPECT_NE(err("name: \"a\" b\n").find("text after the closing quote"), std::string::npos);
  EXPECT_NE(err("name: [a, b]\n").find("unsupported YAML"), std::string::npos);
  EXPECT_NE(err("name: &anchor a\n").find("unsupported YAML"), std::string::npos);
  EXPECT_NE(err("Name: a\n").find("malformed key 'Name'"), std::string::npos);
  EXPECT_NE(err("name: a\n---\n").find("several YAML documents"), std::string::npos);
  EXPECT_NE(err("name: \"\\q\"\n").find("unsupported escape"), std::string::npos);
}

TEST(ConfigFileTest, ParseConfig_FileGivesEverySetting) {
  const std::string file =
      "name: n2\n"
      "data-dir: /tmp/d2\n"
      "initial-cluster: n1=1@127.0.0.1:7001,n2=2@127.0.0.1:7002,n3=3@127.0.0.1:7003\n"
      "key-file: /etc/totemkv/cluster.key\n"
      "listen-client-urls: http://127.0.0.1:3002\n"
      "sync: false\n"
      "totem-window-size: 100\n";
  totem::StatusOr<ServerConfig> c = ParseWith({"--config-file", "cfg.yaml"}, {}, file);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config_file, "cfg.yaml");
  EXPECT_EQ(c->name, "n2");
  EXPECT_EQ(c->node_id, 2u);
  EXPECT_EQ(c->data_dir, "/tmp/d2");
  EXPECT_EQ(c->key_file, "/etc/totemkv/cluster.key");
  EXPECT_EQ(c->listen_addresses, std::vector<std::string>{"127.0.0.1:3002"});
  EXPECT_FALSE(c->sync);
  EXPECT_EQ(c->cluster.size(), 3u);
  EXPECT_EQ(c->totem.window_size, 100u);
}

TEST(ConfigFileTest, ParseConfig_FlagOverridesEnvOverridesFile) {
  const std::string file = "data-dir: from-file\nsync: false\nnode-id: 1\n";
  totem::StatusOr<ServerConfig> c =
      ParseWith({"--config-file=cfg.yaml", "--sync", "true"},
                {"PATH=/bin", "TOTEMKVD_DATA_DIR=from-env", "TOTEMKVD_SYNC=false"}, file);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->data_dir, "from-env");  // env beats file
  EXPECT_TRUE(c->sync);                // flag beats env and file
  EXPECT_EQ(c->node_id, 1u);           // file beats default

  // The config file itself may come from the environment.
  c = ParseWith({}, {"TOTEMKVD_CONFIG_FILE=cfg.yaml"}, file);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->data_dir, "from-file");
  // Without --config-file the file is not read.
  c = ParseWith({}, {}, "bogus-key: 1\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->data_dir, "default.totemkv");
}

TEST(ConfigFileTest, ParseConfig_ErrorsNameTheSource) {
  EXPECT_EQ(ErrorOf(ParseWith({"--config-file", "cfg.yaml"}, {}, "name: a\nbogus: 1\n")),
            "config file cfg.yaml line 2: unknown key 'bogus'");
  EXPECT_EQ(ErrorOf(ParseWith({"--config-file", "cfg.yaml"}, {}, "config-file: x\n")),
            "config file cfg.yaml line 1: a config file cannot name another config file");
  EXPECT_EQ(ErrorOf(ParseWith({"--config-file", "cfg.yaml"}, {}, "# c\nsync: maybe\n")),
            "--sync: want true or false (from config file cfg.yaml line 2)");
  EXPECT_EQ(ErrorOf(ParseWith({}, {"TOTEMKVD_SYNC=maybe"}, "")),
            "--sync: want true or false (from environment TOTEMKVD_SYNC)");
  EXPECT_NE(ErrorOf(ParseWith({}, {"TOTEMKVD_BOGUS=1"}, ""))
                .find("unknown environment variable TOTEMKVD_BOGUS"),
            std::string::npos);
  EXPECT_EQ(ErrorOf(ParseWith({"--config-file", "missing.yaml"}, {}, "")),
            "--config-file: cannot open 'missing.yaml'");
  EXPECT_NE(
      ErrorOf(ParseWith({"--config-file", "cfg.yaml"}, {}, "initial-cluster: a=1@host:1\n"))
          .find("IPv4 address (want NAME=ID@HOST:PORT[/RING]) (from config file cfg.yaml line 1)"),
      std::string::npos);
  EXPECT_EQ(ErrorOf(ParseFlags({"--config-file", "/nonexistent/totemkvd.yaml"})),
            "--config-file: cannot open '/nonexistent/totemkvd.yaml'");
}

TEST(TotemFlagsTest, ParseFlags_AllTotemFlags) {
  totem::StatusOr<ServerConfig> c = ParseFlags({"--totem-transport=multicast",
                                                "--totem-mcast-addr",
                                                "239.1.2.3",
                                                "--totem-mcast-port",
                                                "5405",
                                                "--totem-mcast-interface",
                                                "127.0.0.1",
                                                "--totem-token-timeout-ms",
                                                "200",
                                                "--totem-join-timeout-ms",
                                                "20",
                                                "--totem-consensus-timeout-ms",
                                                "300",
                                                "--totem-merge-timeout-ms",
                                                "500",
                                                "--totem-window-size",
                                                "2000",
                                                "--totem-max-messages",
                                                "100",
                                                "--totem-packing",
                                                "false"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const totem::NodeConfig nc = c->TotemNodeConfig();
  EXPECT_EQ(nc.transport.mode, totem::TransportMode::kMulticast);
  EXPECT_EQ(nc.transport.mcast_group, "239.1.2.3");
  EXPECT_EQ(nc.transport.mcast_port, 5405);
  EXPECT_EQ(nc.transport.mcast_interface, "127.0.0.1");
  EXPECT_EQ(nc.ring.token_timeout_us, 200000u);
  EXPECT_EQ(nc.ring.join_timeout_us, 20000u);
  EXPECT_EQ(nc.ring.consensus_timeout_us, 300000u);
  EXPECT_EQ(nc.ring.merge_timeout_us, 500000u);
  EXPECT_EQ(nc.ring.window_size, 2000u);
  EXPECT_EQ(nc.ring.max_messages_per_visit, 100u);
  EXPECT_FALSE(nc.ring.packing);
  EXPECT_GE(nc.ring.receive_buffer_frames, 8000u);  // grown for the window
  EXPECT_TRUE(nc.ring.Validate().ok());
  ASSERT_EQ(nc.transport.peers.size(), 1u);
  EXPECT_EQ(nc.ring.members, std::vector<totem::NodeId>{1});
}

TEST(TotemFlagsTest, ParseFlags_DefaultsAreTotems) {
  totem::StatusOr<ServerConfig> c = ParseFlags({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const totem::NodeConfig nc = c->TotemNodeConfig();
  const totem::RingConfig ring;
  EXPECT_EQ(nc.transport.mode, totem::TransportMode::kUnicast);
  EXPECT_EQ(nc.ring.token_timeout_us, ring.token_timeout_us);
  EXPECT_EQ(nc.ring.join_timeout_us, ring.join_timeout_us);
  EXPECT_EQ(nc.ring.consensus_timeout_us, ring.consensus_timeout_us);
  EXPECT_EQ(nc.ring.merge_timeout_us, ring.merge_timeout_us);
  EXPECT_EQ(nc.ring.window_size, ring.window_size);
  EXPECT_EQ(nc.ring.max_messages_per_visit, ring.max_messages_per_visit);
  EXPECT_EQ(nc.ring.receive_buffer_frames, ring.receive_buffer_frames);
  EXPECT_TRUE(nc.ring.packing);
}

TEST(TotemFlagsTest, ParseFlags_ValidationErrorsNameTheField) {
  const auto err = [](const std::vector<std::string>& args) { return ErrorOf(ParseFlags(args)); };
  EXPECT_EQ(err({"--totem-transport", "broadcast"}),
            "--totem-transport: want unicast or multicast, got 'broadcast'");
  EXPECT_EQ(err({"--totem-transport", "multicast"}),
            "--totem-mcast-port is required with --totem-transport=multicast");
  EXPECT_NE(err({"--totem-transport", "multicast", "--totem-mcast-port", "5405",
                 "--totem-mcast-addr", "10.0.0.1"})
                .find("transport.mcast_group: 10.0.0.1 is not a multicast address"),
            std::string::npos);
  EXPECT_NE(err({"--totem-mcast-addr", "nope"}).find("--totem-mcast-addr: 'nope' is not"),
            std::string::npos);
  EXPECT_NE(err({"--totem-mcast-port", "70000"}).find("--totem-mcast-port: want a port"),
            std::string::npos);
  EXPECT_NE(err({"--totem-window-size", "10", "--totem-max-messages", "20"})
                .find("max_messages_per_visit (20) must not exceed window_size (10)"),
            std::string::npos);
  EXPECT_NE(err({"--totem-join-timeout-ms", "60"}).find("join_timeout_us"), std::string::npos);
  EXPECT_NE(err({"--totem-token-timeout-ms", "5"}).find("token_timeout_us"), std::string::npos);
  EXPECT_NE(err({"--totem-merge-timeout-ms", "5"}).find("merge_timeout_us"), std::string::npos);
  EXPECT_NE(err({"--totem-token-timeout-ms", "4294968"}).find("want an integer in [1, 4294967]"),
            std::string::npos);
  EXPECT_NE(err({"--totem-window-size", "0"}).find("--totem-window-size: want an integer"),
            std::string::npos);
  EXPECT_NE(err({"--totem-window-size", "-1"}).find("--totem-window-size"), std::string::npos);
  EXPECT_EQ(err({"--totem-packing", "sometimes"}), "--totem-packing: want true or false");
}

TEST(ServerConfigTest, Usage_ListsEveryFlagAndTheEnvironment) {
  const std::string usage = Usage();
  for (const char* flag : {"--config-file",
                           "--name",
                           "--data-dir",
                           "--listen-client-urls",
                           "--initial-cluster ",
                           "--initial-cluster-client-urls",
                           "--node-id",
                           "--key-file",
                           "--sync",
                           "--restore-snapshot",
                           "--totem-transport",
                           "--totem-mcast-addr",
                           "--totem-mcast-port",
                           "--totem-mcast-interface",
                           "--totem-token-timeout-ms",
                           "--totem-join-timeout-ms",
                           "--totem-consensus-timeout-ms",
                           "--totem-merge-timeout-ms",
                           "--totem-window-size",
                           "--totem-max-messages",
                           "--totem-packing",
                           "TOTEMKVD_"}) {
    EXPECT_NE(usage.find(flag), std::string::npos) << flag;
  }
}

// Two rings joined by gateway 9 (the layout of the multi-ring test and
// deploy/docker-compose.multiring.yml).
constexpr char kTwoRings[] =
    "n1=1@127.0.0.1:7001/1,n2=2@127.0.0.1:7002/1,gw=9@127.0.0.1:7009/1,"
    "gw=9@127.0.0.1:7109/2,n3=3@127.0.0.1:7003/2,n4=4@127.0.0.1:7004/2";

TEST(InitialClusterTest, ParseInitialCluster_NoRingIsRingOne) {
  totem::StatusOr<std::vector<ClusterMember>> c =
      ParseInitialCluster("b=2@127.0.0.1:7002,a=1@127.0.0.1:7001/1");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->size(), 2u);
  EXPECT_EQ((*c)[0].name, "a");
  ASSERT_EQ((*c)[1].rings.size(), 1u);
  EXPECT_EQ((*c)[1].rings[0].ring, 1u);
  EXPECT_EQ((*c)[1].rings[0].port, 7002);
}

TEST(InitialClusterTest, ParseFlags_TwoRingsAndAGateway) {
  totem::StatusOr<ServerConfig> c =
      ParseFlags({"--name", "gw", "--initial-cluster", kTwoRings, "--key-file", "k"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->cluster.size(), 5u);  // one entry per member, gateway included
  EXPECT_EQ(c->node_id, 9u);
  EXPECT_TRUE(c->MultiRing());
  EXPECT_EQ(c->Rings(), (std::vector<uint32_t>{1, 2}));
  const ClusterMember& gw = c->cluster[4];
  ASSERT_EQ(gw.rings.size(), 2u);
  EXPECT_EQ(gw.port, 7009);  // lowest ring's address
  EXPECT_EQ(gw.rings[1].port, 7109);

  const totem::MultiRingNodeConfig mc = c->MultiRingConfig();
  ASSERT_EQ(mc.local.size(), 2u);
  EXPECT_EQ(mc.local[0].ring, 1u);
  EXPECT_EQ(mc.local[0].node.ring.members, (std::vector<totem::NodeId>{1, 2, 9}));
  EXPECT_EQ(mc.local[1].node.ring.members, (std::vector<totem::NodeId>{3, 4, 9}));
  ASSERT_EQ(mc.local[1].node.transport.peers.size(), 3u);
  EXPECT_EQ(mc.local[1].node.transport.peers[2].port, 7109);
  ASSERT_EQ(mc.links.size(), 1u);
  EXPECT_EQ(mc.links[0].gateway, 9u);
  EXPECT_EQ(mc.links[0].ring_a, 1u);
  EXPECT_EQ(mc.links[0].ring_b, 2u);
  EXPECT_EQ(mc.rings, (std::vector<uint32_t>{1, 2}));

  // An ordinary member of ring 2 runs one local ring of the same network.
  totem::StatusOr<ServerConfig> n3 =
      ParseFlags({"--name", "n3", "--initial-cluster", kTwoRings, "--key-file", "k"});
  ASSERT_TRUE(n3.ok()) << n3.status().ToString();
  const totem::MultiRingNodeConfig mc3 = n3->MultiRingConfig();
  ASSERT_EQ(mc3.local.size(), 1u);
  EXPECT_EQ(mc3.local[0].ring, 2u);
  EXPECT_EQ(mc3.links.size(), 1u);
  EXPECT_EQ(n3->TotemNodeConfig().ring.members, (std::vector<totem::NodeId>{3, 4, 9}));
}

TEST(InitialClusterTest, ParseFlags_OneRingStaysSingleRing) {
  totem::StatusOr<ServerConfig> c =
      ParseFlags({"--name", "a", "--initial-cluster", "a=1@127.0.0.1:7001/5,b=2@127.0.0.1:7002/5",
                  "--key-file", "k"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->MultiRing());
  EXPECT_EQ(c->TotemNodeConfig().ring.members, (std::vector<totem::NodeId>{1, 2}));
}

TEST(InitialClusterTest, ParseInitialCluster_ErrorsNameTheProblem) {
  const auto err = [](const std::string& text) {
    totem::StatusOr<std::vector<ClusterMember>> c = ParseInitialCluster(text);
    return c.ok() ? std::string("OK") : c.status().message();
  };
  EXPECT_EQ(err("a=1@127.0.0.1:1/0"),
            "--initial-cluster: entry 'a=1@127.0.0.1:1/0': ring must be an integer in [1, "
            "4294967295] (want NAME=ID@HOST:PORT[/RING])");
  EXPECT_NE(err("a=1@127.0.0.1:1/x").find("ring must be an integer"), std::string::npos);
  EXPECT_NE(err("a=1@127.0.0.1:1/").find("ring must be an integer"), std::string::npos);
  EXPECT_NE(err("a=1@127.0.0.1:1/4294967296").find("ring must be an integer"), std::string::npos);
  EXPECT_NE(err("a=1@127.0.0.1/2").find("malformed"), std::string::npos);
  EXPECT_EQ(err("a=1@127.0.0.1:1/1,b=1@127.0.0.1:2/2"),
            "--initial-cluster: entry 'b=1@127.0.0.1:2/2': duplicate node id: 1 is already named "
            "'a' (a gateway lists the same name and id on each of its rings) (want "
            "NAME=ID@HOST:PORT[/RING])");
  EXPECT_NE(
      err("a=1@127.0.0.1:1/1,a=2@127.0.0.1:2/2").find("duplicate name: 'a' is already node id 1"),
      std::string::npos);
  EXPECT_NE(err("a=1@127.0.0.1:1/1,a=1@127.0.0.2:1/1").find("member 'a' is listed twice on ring 1"),
            std::string::npos);
  EXPECT_NE(err("a=1@127.0.0.1:1/1,b=2@127.0.0.1:1/2,a=1@127.0.0.1:3/2")
                .find("address 127.0.0.1:1 is used twice"),
            std::string::npos);
  EXPECT_EQ(err("a=1@127.0.0.1:1/1,b=2@127.0.0.1:2/2"),
            "--initial-cluster: ring 2 is not joined to ring 1 by any chain of gateways (a gateway "
            "is a member listed on two rings with the same name and id)");
  // Gateway 9 joins 1 and 2; ring 3 has no gateway to either.
  EXPECT_NE(err(std::string(kTwoRings) + ",n5=5@127.0.0.1:7005/3").find("ring 3 is not joined"),
            std::string::npos);
  // A chain 1 - 2 - 3 is connected.
  EXPECT_EQ(err(std::string(kTwoRings) + ",g2=8@127.0.0.1:7108/2,g2=8@127.0.0.1:7208/3"), "OK");
}

TEST(InitialClusterTest, ParseFlags_MultiRingRejectsMulticast) {
  totem::StatusOr<ServerConfig> c =
      ParseFlags({"--name", "n1", "--initial-cluster", kTwoRings, "--key-file", "k",
                  "--totem-transport", "multicast", "--totem-mcast-port", "5405"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("not supported with several rings"), std::string::npos);
}

}  // namespace
}  // namespace totemkv::server

// Unit tests of totemkvd's flag parsing: the embedded single-node default,
// the --initial-cluster format and its errors, and the rules tying --name,
// --node-id and --key-file together.
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
  EXPECT_NE(err({"--listen-client-urls", "https://127.0.0.1:1"}).find("only http://"),
            std::string::npos);
  EXPECT_NE(err({"--bogus", "1"}).find("unknown flag"), std::string::npos);
  EXPECT_NE(err({"--name"}).find("needs a value"), std::string::npos);
  EXPECT_NE(err({"--sync", "maybe"}).find("--sync"), std::string::npos);
}

}  // namespace
}  // namespace totemkv::server

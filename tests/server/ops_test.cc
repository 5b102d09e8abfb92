// Operating and securing a cluster, end to end on real totemkvd processes:
//  - TLS on the client API: certificates made by the openssl CLI in the
//    test's temp dir; tkv and etcdctl put/get over TLS; a plaintext client
//    is refused; with --client-cert-auth a client without a certificate is
//    refused and one with a CA-signed certificate served.
//  - Ring authentication: a member started with another cluster key never
//    joins the ring, nothing it writes reaches the others, and both sides
//    count its frames as dropped for failed authentication.
//  - The Prometheus endpoint (--listen-metrics-urls): every line of a
//    scrape parses, every family has HELP and TYPE, and the values match
//    the cluster (ring members, revision, gRPC calls, apply latency).
//  - `tkv status`: a row per endpoint, a dead one included.
//  - Ring encryption (--totem-encryption) and structured logs (text, json).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>

#include "cluster_harness.h"
#include "http_get.h"

namespace totemkv::testing {
namespace {

constexpr const char* kTkvBin = TKV_BIN;

// Runs argv to completion; {exit code, stdout+stderr}.
std::pair<int, std::string> RunTool(const std::string& dir, const std::vector<std::string>& argv) {
  static std::atomic<int> counter{0};
  const std::string out = dir + "/run" + std::to_string(counter++) + ".out";
  Child child(argv, out);
  const std::optional<int> rc = child.Wait(seconds(30));
  return {rc.value_or(-1), ReadFile(out)};
}

// A CA, a server certificate for 127.0.0.1/localhost and a client
// certificate, all signed by the CA (EC P-256 keys: fast to make). The same
// commands are in README.md ("TLS").
bool MakeCertificates(const std::string& dir) {
  const std::string script =
      "set -e; cd '" + dir +
      "'\n"
      "K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
      "openssl req -x509 $K -days 2 -subj /CN=totemkv-test-ca -keyout ca.key -out ca.pem\n"
      "openssl req $K -subj /CN=totemkvd -keyout server.key -out server.csr\n"
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' "
      "> server.ext\n"
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile server.ext -out server.pem\n"
      "openssl req $K -subj /CN=client -keyout client.key -out client.csr\n"
      "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n"
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile client.ext -out client.pem\n";
  return totem::testing::RunCommand({"/bin/sh", "-c", script}, dir + "/openssl.log", seconds(30)) ==
         0;
}

// A parsed Prometheus text exposition; `error` names the first bad line.
struct Exposition {
  std::map<std::string, std::string> types;  // family -> type
  std::set<std::string> helps;
  std::map<std::string, double> samples;  // "name{labels}" as written -> value
  std::string error;

  double Get(const std::string& series) const {
    auto it = samples.find(series);
    return it == samples.end() ? NAN : it->second;
  }
};

Exposition ParseExposition(const std::string& text) {
  Exposition e;
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})? (\S+)$)");
  static const std::regex kMeta(R"(^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$)");
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const std::string where = "line " + std::to_string(n) + " '" + line + "': ";
    std::smatch m;
    if (line.rfind("#", 0) == 0) {
      if (!std::regex_match(line, m, kMeta)) {
        e.error = where + "bad comment";
        return e;
      }
      if (m[1] == "HELP") {
        e.helps.insert(m[2]);
        continue;
      }
      static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                   "untyped"};
      if (!kTypes.count(m[3]) || e.types.count(m[2])) {
        e.error = where + "bad or repeated TYPE";
        return e;
      }
      e.types[m[2]] = m[3];
      continue;
    }
    if (!std::regex_match(line, m, kSample)) {
      e.error = where + "not a sample";
      return e;
    }
    const std::string name = m[1];
    std::string family = name;
    if (!e.types.count(family)) {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s = suffix;
        if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
          family = name.substr(0, name.size() - s.size());
        }
      }
      if (!e.types.count(family) || e.types[family] != "histogram") {
        e.error = where + "no TYPE line before the sample";
        return e;
      }
    }
    if (!e.helps.count(family)) {
      e.error = where + "no HELP line for " + family;
      return e;
    }
    const std::string value = m[m.size() - 1];
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    if (end == value.c_str() || *end != '\0') {
      e.error = where + "bad value";
      return e;
    }
    const std::string series = line.substr(0, line.rfind(' '));
    if (e.samples.count(series)) {
      e.error = where + "repeated series";
      return e;
    }
    e.samples[series] = v;
  }
  return e;
}

// One scrape of /metrics; a non-200 answer is an error.
Exposition Scrape(uint16_t port) {
  const auto [code, body] = HttpGet(port, "/metrics");
  Exposition e = ParseExposition(body);
  if (code != 200) e.error = "HTTP status " + std::to_string(code) + ": " + body;
  return e;
}

// `tkv status` output as whitespace-separated columns per line (the
// leading columns have no blanks), keyed by the first column.
std::map<std::string, std::vector<std::string>> StatusRows(const std::string& out) {
  std::map<std::string, std::vector<std::string>> rows;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::vector<std::string> cols{std::istream_iterator<std::string>(f), {}};
    if (!cols.empty()) rows[cols[0]] = cols;
  }
  return rows;
}

class OpsTest : public ThreeNodeClusterTest {
 protected:
  std::pair<int, std::string> Tkv(const std::vector<std::string>& args) {
    std::vector<std::string> argv{kTkvBin, "--dial-timeout=2s", "--command-timeout=8s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunTool(cluster_.dir(), argv);
  }
  std::string Path(const std::string& name) const { return cluster_.dir() + "/" + name; }
  std::vector<std::string> ServerTls() const {
    return {"--client-cert-file", Path("server.pem"), "--client-key-file", Path("server.key")};
  }
  // Starts node i with a metrics port of its own (metrics_[i]).
  void StartWithMetrics(size_t i, std::vector<std::string> extra = {}) {
    extra.push_back("--listen-metrics-urls");
    extra.push_back("http://127.0.0.1:" + std::to_string(metrics_[i]));
    cluster_.Start(i, extra);
  }

  std::vector<uint16_t> metrics_ = {FreeTcpPort(), FreeTcpPort(), FreeTcpPort()};
};

TEST_F(OpsTest, Tls_TkvAndEtcdctlPutGet_PlaintextRefused) {
  ASSERT_TRUE(MakeCertificates(cluster_.dir())) << ReadFile(Path("openssl.log"));
  cluster_.set_scheme("https");
  StartCluster(ServerTls());
  const std::string ca = "--cacert=" + Path("ca.pem");

  auto r = Tkv({"--endpoints=" + cluster_.Url(0), ca, "put", "tls/k", "v1"});
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_EQ(r.second, "OK\n");
  r = Tkv({"--endpoints=" + cluster_.Url(1), ca, "get", "tls/k"});
  EXPECT_EQ(r.first, 0) << r.second;
  EXPECT_EQ(r.second, "tls/k\nv1\n");

  auto e = Etcdctl(cluster_, cluster_.Url(2), "--cacert " + Path("ca.pem") + " put tls/e v2");
  EXPECT_EQ(e.first, 0) << e.second;
  e = Etcdctl(cluster_, cluster_.Url(0), "--cacert " + Path("ca.pem") + " get tls/e");
  EXPECT_EQ(e.first, 0) << e.second;
  EXPECT_EQ(e.second, "tls/e\nv2\n");

  // A plaintext client cannot talk to a TLS port.
  r = Tkv({"--endpoints=" + cluster_.Endpoint(0), "--dial-timeout=1s", "--command-timeout=1s",
           "get", "tls/k"});
  EXPECT_EQ(r.first, 1) << r.second;
  EXPECT_EQ(r.second.find("v1"), std::string::npos) << r.second;
  e = Etcdctl(cluster_, cluster_.Endpoint(0), "--dial-timeout=1s --command-timeout=1s get tls/k");
  EXPECT_NE(e.first, 0) << e.second;
  EXPECT_EQ(e.second.find("v1"), std::string::npos) << e.second;
  // A server certificate from another CA is not trusted.
  r = Tkv({"--endpoints=" + cluster_.Url(0), "--cacert=" + Path("client.pem"), "--dial-timeout=1s",
           "--command-timeout=1s", "get", "tls/k"});
  EXPECT_EQ(r.first, 1) << r.second;
  // A missing file is named.
  r = Tkv({"--endpoints=" + cluster_.Url(0), "--cacert=" + Path("nope.pem"), "get", "tls/k"});
  EXPECT_EQ(r.first, 1) << r.second;
  EXPECT_NE(r.second.find("--cacert: cannot open"), std::string::npos) << r.second;
}

TEST_F(OpsTest, TlsClientCertAuth_ClientWithoutCertificateRefused) {
  ASSERT_TRUE(MakeCertificates(cluster_.dir())) << ReadFile(Path("openssl.log"));
  cluster_.set_scheme("https");
  std::vector<std::string> flags = ServerTls();
  flags.insert(flags.end(),
               {"--client-cert-auth", "true", "--client-trusted-ca-file", Path("ca.pem")});
  StartCluster(flags);
  const std::string ca = "--cacert=" + Path("ca.pem");
  const std::string cert = "--cert=" + Path("client.pem");
  const std::string key = "--key=" + Path("client.key");

  auto r = Tkv({"--endpoints=" + cluster_.Url(0), ca, cert, key, "put", "auth/k", "v"});
  ASSERT_EQ(r.first, 0) << r.second;
  auto e = Etcdctl(cluster_, cluster_.Url(1),
                   "--cacert " + Path("ca.pem") + " --cert " + Path("client.pem") + " --key " +
                       Path("client.key") + " get auth/k");
  EXPECT_EQ(e.first, 0) << e.second;
  EXPECT_EQ(e.second, "auth/k\nv\n");

  // TLS without a client certificate: the handshake fails.
  r = Tkv({"--endpoints=" + cluster_.Url(0), ca, "--dial-timeout=1s", "--command-timeout=1s", "get",
           "auth/k"});
  EXPECT_EQ(r.first, 1) << r.second;
  EXPECT_EQ(r.second.find("auth/k"), std::string::npos) << r.second;
  e = Etcdctl(cluster_, cluster_.Url(1),
              "--cacert " + Path("ca.pem") + " --dial-timeout=1s --command-timeout=1s get auth/k");
  EXPECT_NE(e.first, 0) << e.second;
  EXPECT_EQ(e.second.find("auth/k\nv"), std::string::npos) << e.second;
  // --cert without --key is a usage error.
  r = Tkv({"--endpoints=" + cluster_.Url(0), ca, cert, "get", "auth/k"});
  EXPECT_EQ(r.first, 2) << r.second;
}

TEST_F(OpsTest, TlsFlags_BadCombinationsRefusedAtStart) {
  ASSERT_TRUE(cluster_.Init());
  // https:// without a certificate; a certificate without an https:// URL;
  // client-cert-auth without a CA.
  const std::vector<std::vector<std::string>> bad = {
      {"--listen-client-urls", "https://127.0.0.1:1"},
      {"--client-cert-file", Path("x.pem"), "--client-key-file", Path("x.key")},
      {"--listen-client-urls", "https://127.0.0.1:1", "--client-cert-file", Path("x.pem"),
       "--client-key-file", Path("x.key"), "--client-cert-auth", "true"},
      {"--listen-metrics-urls", "https://127.0.0.1:1"},
  };
  const std::vector<std::string> expect = {
      "needs --client-cert-file", "no --listen-client-urls URL is https://",
      "needs --client-trusted-ca-file", "want http://HOST:PORT"};
  for (size_t i = 0; i < bad.size(); ++i) {
    std::vector<std::string> argv{kServerBin, "--data-dir", Path("bad")};
    argv.insert(argv.end(), bad[i].begin(), bad[i].end());
    auto r = RunTool(cluster_.dir(), argv);
    EXPECT_EQ(r.first, 2) << r.second;
    EXPECT_NE(r.second.find(expect[i]), std::string::npos) << r.second;
  }
  // Unreadable PEM files are named at start, before serving.
  auto r = RunTool(cluster_.dir(),
                   {kServerBin, "--data-dir", Path("bad"), "--listen-client-urls",
                    "https://127.0.0.1:" + std::to_string(FreeTcpPort()), "--client-cert-file",
                    Path("x.pem"), "--client-key-file", Path("x.key")});
  EXPECT_EQ(r.first, 1) << r.second;
  EXPECT_NE(r.second.find("--client-cert-file: cannot read"), std::string::npos) << r.second;
}

TEST_F(OpsTest, Metrics_ScrapeParses_ValuesMatchCluster_StatusShowsEveryEndpoint) {
  ASSERT_TRUE(cluster_.Init());
  for (size_t i = 0; i < 3; ++i) StartWithMetrics(i);
  ASSERT_TRUE(cluster_.WaitForRing("1,2,3", seconds(30)));
  auto kv = cluster_.Kv(0);
  int64_t revision = 0;
  for (int i = 0; i < 5; ++i) {
    etcdserverpb::PutResponse resp;
    ASSERT_TRUE(Put(*kv, "m/" + std::to_string(i), "v", &resp).ok());
    revision = resp.header().revision();
  }
  {  // a failing call is counted with its code
    grpc::ClientContext ctx;
    etcdserverpb::RangeRequest req;  // no key: INVALID_ARGUMENT
    etcdserverpb::RangeResponse resp;
    EXPECT_EQ(kv->Range(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }

  Exposition e;
  ASSERT_TRUE(WaitFor(
      [&] {
        e = Scrape(metrics_[0]);
        return e.error.empty() && e.Get("totemkv_store_revision") >= revision;
      },
      seconds(10)))
      << e.error;
  EXPECT_EQ(e.types["totemkv_ring_state"], "gauge");
  EXPECT_EQ(e.Get("totemkv_ring_state{state=\"operational\"}"), 1);
  EXPECT_EQ(e.Get("totemkv_ring_members"), 3);
  EXPECT_EQ(e.Get("totemkv_primary"), 1);
  EXPECT_EQ(e.Get("totemkv_replication_role{role=\"primary\"}"), 1);
  EXPECT_GE(e.Get("totemkv_configurations_total{kind=\"regular\"}"), 1);
  EXPECT_GE(e.Get("totemkv_token_rotation_seconds"), 0);
  EXPECT_GE(e.Get("totemkv_totem_messages_delivered_total"), 5);
  EXPECT_GE(e.Get("totemkv_totem_bytes_delivered_total"), 5);
  EXPECT_EQ(e.types["totemkv_totem_retransmissions_sent_total"], "counter");
  EXPECT_EQ(e.Get("totemkv_totem_dropped_frames_total{reason=\"auth\"}"), 0);
  EXPECT_FALSE(std::isnan(e.Get("totemkv_totem_dropped_frames_total{reason=\"malformed\"}")));
  EXPECT_GE(e.Get("totemkv_applied_index"), 5);
  EXPECT_GE(e.Get("totemkv_store_ops_applied_total"), 5);
  EXPECT_EQ(e.types["totemkv_apply_latency_seconds"], "histogram");
  EXPECT_GE(e.Get("totemkv_apply_latency_seconds_count"), 1);
  EXPECT_EQ(e.Get("totemkv_apply_latency_seconds_bucket{le=\"+Inf\"}"),
            e.Get("totemkv_apply_latency_seconds_count"));
  EXPECT_EQ(e.Get("grpc_server_handled_total{grpc_service=\"etcdserverpb.KV\",grpc_method="
                  "\"Put\",grpc_code=\"OK\"}"),
            5);
  EXPECT_EQ(e.Get("grpc_server_handled_total{grpc_service=\"etcdserverpb.KV\",grpc_method="
                  "\"Range\",grpc_code=\"InvalidArgument\"}"),
            1);
  EXPECT_EQ(e.Get("grpc_server_handling_seconds_count{grpc_service=\"etcdserverpb.KV\","
                  "grpc_method=\"Put\"}"),
            5);
  // Another node ordered the same puts but served none of them.
  Exposition e2 = Scrape(metrics_[1]);
  ASSERT_TRUE(e2.error.empty()) << e2.error;
  EXPECT_TRUE(
      std::isnan(e2.Get("grpc_server_handled_total{grpc_service=\"etcdserverpb.KV\","
                        "grpc_method=\"Put\",grpc_code=\"OK\"}")));
  EXPECT_GE(e2.Get("totemkv_totem_messages_delivered_total"), 5);
  EXPECT_EQ(HttpGet(metrics_[0], "/health"), std::make_pair(200, std::string("ok\n")));
  EXPECT_EQ(HttpGet(metrics_[0], "/nope").first, 404);

  // tkv status: every endpoint, a dead one included (exit 1).
  const std::string dead = "127.0.0.1:" + std::to_string(FreeTcpPort());
  auto r = Tkv({"--endpoints=" + cluster_.Endpoint(0) + "," + cluster_.Endpoint(1) + "," +
                    cluster_.Endpoint(2) + "," + dead,
                "status"});
  EXPECT_EQ(r.first, 1) << r.second;
  auto rows = StatusRows(r.second);
  const std::vector<std::string> header{"ENDPOINT", "ID", "REACHABLE", "PRIMARY", "RING"};
  EXPECT_EQ(std::vector<std::string>(
                rows["ENDPOINT"].begin(),
                rows["ENDPOINT"].begin() + std::min<size_t>(5, rows["ENDPOINT"].size())),
            header)
      << r.second;
  for (size_t i = 0; i < 3; ++i) {
    const std::vector<std::string>& cols = rows[cluster_.Endpoint(i)];
    ASSERT_GE(cols.size(), 8u) << r.second;
    EXPECT_EQ(cols[2], "true") << r.second;  // reachable
    EXPECT_EQ(cols[3], "true") << r.second;  // primary
    EXPECT_EQ(cols[4], "1,2,3") << r.second;
    EXPECT_EQ(cols[5], "operational") << r.second;
    EXPECT_GE(std::stoll(cols[6]), revision) << r.second;
    EXPECT_GE(std::stoll(cols[7]), 5) << r.second;  // global index
  }
  ASSERT_GE(rows[dead].size(), 3u) << r.second;
  EXPECT_EQ(rows[dead][2], "false") << r.second;
  r = Tkv({"--endpoints=" + cluster_.Endpoint(1), "-w", "json", "status"});
  EXPECT_EQ(r.first, 0) << r.second;
  EXPECT_NE(r.second.find("\"reachable\":true,\"primary\":true,\"ring_members\":[1,2,3]"),
            std::string::npos)
      << r.second;
}

TEST_F(OpsTest, RingKey_NodeWithOtherKey_CannotJoinOrInject_FramesCountedAsRejected) {
  ASSERT_TRUE(cluster_.Init());
  const std::string other_key = Path("other.key");
  ASSERT_TRUE(totem::WriteKeyFile(other_key).ok());
  // A fresh cluster needs every member for its first primary: start all
  // three with the cluster key, then restart n3 with another key.
  for (size_t i = 0; i < 3; ++i) StartWithMetrics(i);
  ASSERT_TRUE(cluster_.WaitForRing("1,2,3", seconds(30)));
  etcdserverpb::PutResponse resp;
  ASSERT_TRUE(Put(*cluster_.Kv(0), "before", "v", &resp).ok());
  cluster_.Kill(2);
  const size_t log1_start = ReadFile(cluster_.Log(0)).size();
  StartWithMetrics(2, {"--key-file", other_key});  // the last --key-file wins
  // n1 and n2 form a ring of two; n3 serves alone, outside it.
  const auto last_regular = [&](size_t i) {
    const std::string log = ReadFile(cluster_.Log(i));
    const size_t pos = log.rfind("event=ring_configuration kind=regular");
    if (log.find("event=listening kind=client") == std::string::npos || pos == std::string::npos) {
      return std::string();
    }
    return log.substr(pos, log.find('\n', pos) - pos);
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        return last_regular(0).find(" members=1,2 ") != std::string::npos &&
               last_regular(1).find(" members=1,2 ") != std::string::npos &&
               last_regular(2).find(" members=3 ") != std::string::npos;
      },
      seconds(30)));

  // Both sides drop the other's frames as unauthenticated, and keep doing so.
  Exposition e1, e3;
  ASSERT_TRUE(WaitFor(
      [&] {
        e1 = Scrape(metrics_[0]);
        e3 = Scrape(metrics_[2]);
        return e1.error.empty() && e3.error.empty() &&
               e1.Get("totemkv_totem_dropped_frames_total{reason=\"auth\"}") >= 5 &&
               e3.Get("totemkv_totem_dropped_frames_total{reason=\"auth\"}") >= 5;
      },
      seconds(10)))
      << e1.error << e3.error;
  EXPECT_EQ(e1.Get("totemkv_ring_members"), 2);
  EXPECT_EQ(e1.Get("totemkv_primary"), 1);
  EXPECT_EQ(e3.Get("totemkv_ring_members"), 1);
  EXPECT_EQ(e3.Get("totemkv_primary"), 0);

  // The intruder's write is refused (no quorum on its own) and never
  // reaches the ring; the ring's writes go on.
  EXPECT_FALSE(Put(*cluster_.Kv(2), "intruder", "x", &resp, milliseconds(3000)).ok());
  ASSERT_TRUE(Put(*cluster_.Kv(0), "ring", "y", &resp).ok());
  for (size_t i : {0, 1}) {
    std::map<std::string, std::pair<std::string, int64_t>> got;
    ASSERT_TRUE(RangePrefix(*cluster_.Kv(i), "intruder", false, &got).ok());
    EXPECT_TRUE(got.empty());
    ASSERT_TRUE(RangePrefix(*cluster_.Kv(i), "ring", false, &got).ok());
    EXPECT_EQ(got.size(), 1u);
  }
  // No configuration of n1 had member 3 again.
  const std::string log1 = ReadFile(cluster_.Log(0)).substr(log1_start);
  EXPECT_EQ(log1.find("members=1,2,3"), std::string::npos);
  EXPECT_EQ(log1.find("joined=3"), std::string::npos);
  // tkv status says who serves and why the intruder does not.
  auto r = Tkv({"--endpoints=" + cluster_.Endpoint(0) + "," + cluster_.Endpoint(2), "status"});
  EXPECT_EQ(r.first, 0) << r.second;
  auto rows = StatusRows(r.second);
  const std::vector<std::string>& ring = rows[cluster_.Endpoint(0)];
  const std::vector<std::string>& intruder = rows[cluster_.Endpoint(2)];
  ASSERT_GE(ring.size(), 8u) << r.second;
  ASSERT_GE(intruder.size(), 12u) << r.second;  // with a reason
  EXPECT_EQ(ring[3], "true") << r.second;
  EXPECT_EQ(ring[4], "1,2") << r.second;
  EXPECT_EQ(intruder[2], "true") << r.second;
  EXPECT_EQ(intruder[3], "false") << r.second;
  EXPECT_EQ(intruder[4], "3") << r.second;
  EXPECT_NE(r.second.find("quorum"), std::string::npos) << r.second;
}

// Ring encryption on real totemkvd (--totem-encryption): the ring forms
// and serves, a restarted member catches up over the encrypted ring; the
// logs are structured, one event per line, in text and (--log-format json)
// in JSON that python3's parser accepts line by line.
TEST_F(OpsTest, TotemEncryption_RingServesAndCatchesUp_LogsStructuredTextAndJson) {
  const std::vector<std::string> encrypt = {"--totem-encryption", "true"};
  StartCluster(encrypt);
  etcdserverpb::PutResponse resp;
  ASSERT_TRUE(Put(*cluster_.Kv(0), "enc/k", "v1", &resp).ok());
  const auto has = [&](size_t i, const std::string& value) {
    std::map<std::string, std::pair<std::string, int64_t>> got;
    return RangePrefix(*cluster_.Kv(i), "enc/", false, &got).ok() && got.size() == 1 &&
           got.begin()->second.first == value;
  };
  EXPECT_TRUE(WaitFor([&] { return has(2, "v1"); }, seconds(10)));

  // Text: every line is "ts=... level=... event=..." and the start and the
  // ring's configuration are there.
  const std::string log1 = ReadFile(cluster_.Log(0));
  EXPECT_NE(log1.find(" event=server_started name=n1 node_id=1 "), std::string::npos) << log1;
  EXPECT_NE(log1.find(" totem_encryption=true "), std::string::npos) << log1;
  EXPECT_NE(log1.find(" event=ring_configuration kind=regular ring="), std::string::npos) << log1;
  EXPECT_NE(log1.find(" event=primary_installed role=primary "), std::string::npos) << log1;
  const std::regex text_line(
      R"(ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(debug|info|warn|error) )"
      R"(event=[a-z]+(_[a-z]+)*( [a-z_]+=("([^"\\]|\\.)*"|[^ "=]+))*)");
  std::istringstream lines(log1);
  size_t events = 0;
  for (std::string line; std::getline(lines, line); ++events) {
    EXPECT_TRUE(std::regex_match(line, text_line)) << line;
  }
  EXPECT_GE(events, 4u);

  // JSON: n3 restarts with --log-format json and catches up.
  cluster_.Kill(2);
  ASSERT_TRUE(Put(*cluster_.Kv(0), "enc/k", "v2", &resp).ok());
  std::vector<std::string> json = encrypt;
  json.insert(json.end(), {"--log-format", "json"});
  cluster_.Start(2, json);
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string log = ReadFile(cluster_.Log(2));
        return log.find(R"("event":"listening","kind":"client")") != std::string::npos &&
               log.find(R"("event":"primary_installed")") != std::string::npos;
      },
      seconds(30)))
      << ReadFile(cluster_.Log(2));
  EXPECT_TRUE(WaitFor([&] { return has(2, "v2"); }, seconds(10)));
  const std::string log3 = ReadFile(cluster_.Log(2));
  EXPECT_NE(log3.find(R"("event":"server_started","name":"n3","node_id":3,)"), std::string::npos)
      << log3;
  EXPECT_NE(log3.find(R"("event":"ring_configuration","kind":"regular")"), std::string::npos)
      << log3;
  EXPECT_EQ(log3.find("ts="), std::string::npos) << log3;  // no text line slipped in
  auto r =
      RunTool(cluster_.dir(),
              {"python3", "-c",
               "import json, sys\n"
               "n = 0\n"
               "for line in open(sys.argv[1]):\n"
               "    o = json.loads(line)\n"
               "    assert isinstance(o, dict) and list(o)[:3] == ['ts', 'level', 'event'], o\n"
               "    n += 1\n"
               "assert n >= 4, n\n"
               "print('ok', n)\n",
               cluster_.Log(2)});
  EXPECT_EQ(r.first, 0) << r.second;
  EXPECT_EQ(r.second.rfind("ok ", 0), 0u) << r.second;
}

}  // namespace
}  // namespace totemkv::testing

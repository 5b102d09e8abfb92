// Test harness for the client tests: starts a real etcd v3 API server on
// free loopback ports with a temporary data dir, waits (with a deadline)
// until it answers Maintenance.Status, and stops it at the end. The server
// is a parameter: by default etcd (ETCD_BIN, from the etcd-server
// package); TKV_TEST_SERVER=totemkvd with TKV_TEST_SERVER_BIN=<path> runs
// the same tests against totemkvd (single node, etcd-style flags). Also
// runs tkv as a subprocess with given stdin, capturing stdout, stderr and
// the exit code.
#ifndef TOTEMKV_TESTS_CLIENT_SERVER_HARNESS_H_
#define TOTEMKV_TESTS_CLIENT_SERVER_HARNESS_H_

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../integration/test_util.h"
#include "client/client.h"

namespace totemkv::testing {

using totem::testing::Child;
using totem::testing::ReadFile;
using totem::testing::TempDir;
using totem::testing::WaitFor;

// A TCP port on 127.0.0.1 that was free a moment ago.
inline uint16_t FreeTcpPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  uint16_t port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// How to start one server: its binary and argv for given ports and dir.
struct ServerSpec {
  std::string name;
  std::string binary;
  std::function<std::vector<std::string>(const std::string& binary, uint16_t client_port,
                                         uint16_t peer_port, const std::string& data_dir)>
      argv;
};

inline ServerSpec EtcdSpec(const std::string& binary) {
  return {"etcd", binary,
          [](const std::string& bin, uint16_t cp, uint16_t pp, const std::string& dir) {
            const std::string c = "http://127.0.0.1:" + std::to_string(cp);
            const std::string p = "http://127.0.0.1:" + std::to_string(pp);
            return std::vector<std::string>{bin,
                                            "--name=default",
                                            "--data-dir=" + dir,
                                            "--listen-client-urls=" + c,
                                            "--advertise-client-urls=" + c,
                                            "--listen-peer-urls=" + p,
                                            "--initial-advertise-peer-urls=" + p,
                                            "--initial-cluster=default=" + p,
                                            "--log-level=error"};
          }};
}

inline ServerSpec TotemkvdSpec(const std::string& binary) {
  return {"totemkvd", binary,
          [](const std::string& bin, uint16_t cp, uint16_t, const std::string& dir) {
            return std::vector<std::string>{
                bin, "--name=default", "--data-dir=" + dir,
                "--listen-client-urls=http://127.0.0.1:" + std::to_string(cp)};
          }};
}

// The server under test, from the environment (see the file comment).
inline ServerSpec ServerFromEnv() {
  const char* kind = std::getenv("TKV_TEST_SERVER");
  const char* bin = std::getenv("TKV_TEST_SERVER_BIN");
  if (kind != nullptr && std::string(kind) == "totemkvd") {
    return TotemkvdSpec(bin != nullptr ? bin : "totemkvd");
  }
  return EtcdSpec(bin != nullptr ? bin : ETCD_BIN);
}

class TestServer {
 public:
  explicit TestServer(ServerSpec spec) : spec_(std::move(spec)) {}
  ~TestServer() { Stop(); }

  bool available() const { return ::access(spec_.binary.c_str(), X_OK) == 0; }

  // Starts the server and waits up to `timeout` for it to answer. False
  // (with the server's log in *log) when it does not.
  bool Start(std::chrono::milliseconds timeout, std::string* log) {
    client_port_ = FreeTcpPort();
    uint16_t peer = FreeTcpPort();
    while (peer == client_port_) peer = FreeTcpPort();
    log_path_ = dir_.path() + "/server.log";
    child_ = std::make_unique<Child>(
        spec_.argv(spec_.binary, client_port_, peer, dir_.path() + "/data"), log_path_);
    client::ClientOptions o;
    o.endpoints = {endpoint()};
    o.dial_timeout = std::chrono::milliseconds(200);
    o.command_timeout = std::chrono::milliseconds(500);
    o.max_rounds = 1;
    const bool up = WaitFor(
        [&] {
          if (child_->Wait(std::chrono::milliseconds(0)).has_value()) return true;  // died
          client::Client c(o);
          return c.ServerStatus().ok();
        },
        timeout);
    const bool alive = !child_->Wait(std::chrono::milliseconds(0)).has_value();
    if (!(up && alive)) *log = ReadFile(log_path_);
    return up && alive;
  }

  void Stop() {
    if (child_) {
      child_->Signal(SIGTERM);
      if (!child_->Wait(std::chrono::seconds(5)).has_value()) child_->Kill();
      child_.reset();
    }
  }

  std::string endpoint() const { return "127.0.0.1:" + std::to_string(client_port_); }
  const ServerSpec& spec() const { return spec_; }

 private:
  ServerSpec spec_;
  TempDir dir_;
  uint16_t client_port_ = 0;
  std::string log_path_;
  std::unique_ptr<Child> child_;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv with `input` on stdin; -1 exit code if it ran past `timeout`
// (then it is killed). If `signal_after` is set, sends SIGINT after it.
inline RunResult RunProcess(const std::vector<std::string>& argv, const std::string& input = "",
                            std::chrono::milliseconds timeout = std::chrono::seconds(15),
                            const std::function<void()>& while_running = nullptr) {
  TempDir dir;
  const std::string in_path = dir.path() + "/in", out_path = dir.path() + "/out",
                    err_path = dir.path() + "/err";
  {
    std::ofstream in(in_path);
    in << input;
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int in_fd = ::open(in_path.c_str(), O_RDONLY);
    const int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  RunResult r;
  if (while_running) {
    while_running();
    ::kill(pid, SIGINT);
  }
  int st = 0;
  const bool done = WaitFor([&] { return ::waitpid(pid, &st, WNOHANG) == pid; }, timeout);
  if (!done) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &st, 0);
  } else {
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  return r;
}

// A test suite sharing one server for all its tests: started once in
// SetUpTestSuite, stopped in TearDownTestSuite; a test is skipped when the
// server binary is not installed and fails when it did not start. `Derived`
// gives each suite its own server (CRTP).
template <typename Derived>
class ServerSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new TestServer(ServerFromEnv());
    if (!server_->available()) return;
    std::string log;
    started_ = server_->Start(std::chrono::seconds(15), &log);
    if (!started_) ADD_FAILURE() << "server did not start:\n" << log;
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!server_->available()) GTEST_SKIP() << server_->spec().binary << " not installed";
    ASSERT_TRUE(started_);
  }

  static inline TestServer* server_ = nullptr;
  static inline bool started_ = false;
};

}  // namespace totemkv::testing

#endif  // TOTEMKV_TESTS_CLIENT_SERVER_HARNESS_H_

// tkv-bench --failover: write unavailability of a store cluster when one
// member crashes, for totemkvd and etcd alike.
//
// The benchmark spawns the cluster itself (N real server processes on
// 127.0.0.1, free ports, a fresh temp dir), so it knows which process to
// kill and how to restart it. --clients C client threads (default 8) put in
// a closed loop, one request in flight each. Like etcd's clientv3 (3.4),
// every client is given all endpoints: it has its own gRPC channel with the
// round_robin policy over every member, so a dead member's connection drops
// out of the rotation as soon as it closes and the next request goes to a
// live one. A failed put is counted, not retried (clientv3 does not retry a
// put that was sent either).
//
// Each trial, with puts flowing, SIGKILLs one member (victims alternate
// between the member that Maintenance.Status names leader -- for totemkvd
// the Totem ring's representative -- and the other members in turn) and
// measures from the instant before kill(2):
//  - unavailable_ms: for each client, the longest gap between the
//    completions of two consecutive successful puts that starts at its last
//    success at or before the kill or later, but before the victim's
//    restart (which comes once every client has written again); the
//    trial's number is the maximum over the clients (every client is a
//    survivor: all of them reach every member);
//  - resumed_ms: kill -> the instant the last client had a put succeed;
//  - errors by gRPC code from the kill to the end of the trial, and how
//    many requests were in flight at the kill (started before, completed
//    after), how many of those went to the victim and how many failed.
// Then the victim is restarted with its data dir; serve_ms is the time
// until a put sent to it alone succeeds, rejoin_gap_ms the longest gap
// between successful puts of any client that starts after the restart.
// The next trial starts after every client has written through the
// restarted member again and --settle-ms more of load.
//
// Deliberate differences from etcd's client: reconnect backoff is short
// (100-500 ms, not gRPC's 1-120 s) so the restarted member is back in
// every client's rotation before the next trial.
#include "tkv_failover.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "etcd/rpc.grpc.pb.h"
#include "grpc_code_name.h"
#include "totem/node.h"

extern char** environ;

namespace totemkv::bench {
namespace {

using totemkv::bench::LoadAverage1;
using totemkv::bench::SelfDir;
using totemkv::bench::Stats;
using totemkv::bench::Summarize;
using totemkv::bench::WaitUntil;

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

enum class System { kTotemkvd, kEtcd };

const char* SystemName(System s) { return s == System::kTotemkvd ? "totemkvd" : "etcd"; }

enum class VictimOrder { kAlternate, kRotate, kList };

struct FailoverOptions {
  std::vector<System> systems = {System::kTotemkvd, System::kEtcd};
  uint32_t nodes = 3;
  uint32_t trials = 5;
  uint32_t clients = 8;
  uint32_t timeout_ms = 5000;
  uint32_t value_size = 256;
  uint64_t keys = 1000;
  uint32_t error_pause_ms = 10;
  uint32_t settle_ms = 1000;
  uint32_t resume_timeout_s = 30;
  uint32_t serve_timeout_s = 30;
  VictimOrder victims = VictimOrder::kAlternate;
  std::vector<uint32_t> victim_list;  // kList: 1-based member numbers, cycled
  std::string server_bin;             // default: totemkvd next to tkv-bench
  std::string etcd_bin = "/usr/bin/etcd";
  std::vector<std::string> server_args;
  std::vector<std::string> etcd_args;
  bool keep = false;
};

void PrintUsage() {
  std::fprintf(
      stderr,
      "usage: tkv-bench --failover [options]\n"
      "Spawns an N-member cluster on 127.0.0.1 (free ports, fresh temp dir), puts from\n"
      "--clients threads (each with all endpoints, gRPC round_robin, like etcd clientv3),\n"
      "SIGKILLs one member per trial and restarts it with its data dir. Reports per trial\n"
      "and a summary line per system:\n"
      "  failover SYSTEM: trials=T unavailable_ms min=.. median=.. max=.. errors=.. "
      "in_flight=..\n"
      "  --system S            totemkvd | etcd | both (default both: totemkvd, then etcd)\n"
      "  --nodes N             members, 3..9 (default 3)\n"
      "  --trials N            kill -9 trials (default 5)\n"
      "  --clients N           put clients, one request in flight each (default 8)\n"
      "  --victims V           alternate: odd trials kill the leader (etcd: raft leader;\n"
      "                        totemkvd: ring representative; from Maintenance.Status),\n"
      "                        even ones the other member killed least often (default);\n"
      "                        rotate: member 1, 2, ... regardless of roles; or a list\n"
      "                        of member numbers, cycled (e.g. 2 or 3,1)\n"
      "  --timeout-ms N        per-put deadline (default 5000)\n"
      "  --value-size B        put value bytes (default 256)\n"
      "  --keys N              key space (default 1000)\n"
      "  --error-pause-ms N    a client's pause after a failed put (default 10)\n"
      "  --settle-ms N         load before each kill, after the previous victim is back\n"
      "                        (default 1000)\n"
      "  --resume-timeout-s N  a trial fails if some client has no successful put this\n"
      "                        long after the kill (default 30)\n"
      "  --serve-timeout-s N   a trial fails if the restarted victim does not accept a put\n"
      "                        within this (default 30)\n"
      "  --server-bin PATH     totemkvd (default: next to tkv-bench)\n"
      "  --server-arg ARG      extra totemkvd flag, repeatable (e.g. --sync=false)\n"
      "  --etcd-bin PATH       etcd 3.4 (default /usr/bin/etcd)\n"
      "  --etcd-arg ARG        extra etcd flag, repeatable (e.g. --election-timeout=500)\n"
      "  --keep                keep the work dir (member logs) and print its path\n"
      "Exit: 0 every trial completed, 1 a cluster did not start, 2 bad flags, 4 a trial did\n"
      "not complete (puts did not resume or the victim did not serve again).\n");
}

using totemkv::bench::ParseUint;

std::optional<FailoverOptions> ParseFailoverOptions(int argc, char** argv) {
  FailoverOptions o;
  auto fail = [](const std::string& why) -> std::optional<FailoverOptions> {
    std::fprintf(stderr, "tkv-bench: %s\n", why.c_str());
    PrintUsage();
    return std::nullopt;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--failover") continue;
    if (flag == "-h" || flag == "--help") {
      PrintUsage();
      std::exit(0);
    }
    if (flag == "--keep") {
      o.keep = true;
      continue;
    }
    if (i + 1 >= argc) return fail("missing value for " + flag);
    const std::string value = argv[++i];
    uint64_t u = 0;
    auto u32 = [&](uint64_t min, uint64_t max, uint32_t* out) {
      if (!ParseUint(value, min, max, &u)) return false;
      *out = static_cast<uint32_t>(u);
      return true;
    };
    if (flag == "--system") {
      if (value == "totemkvd") {
        o.systems = {System::kTotemkvd};
      } else if (value == "etcd") {
        o.systems = {System::kEtcd};
      } else if (value == "both") {
        o.systems = {System::kTotemkvd, System::kEtcd};
      } else {
        return fail("--system must be totemkvd, etcd or both, not '" + value + "'");
      }
    } else if (flag == "--nodes") {
      if (!u32(3, 9, &o.nodes)) return fail("--nodes must be 3..9");
    } else if (flag == "--trials") {
      if (!u32(1, 1000, &o.trials)) return fail("--trials must be 1..1000");
    } else if (flag == "--clients") {
      if (!u32(1, 1024, &o.clients)) return fail("--clients must be 1..1024");
    } else if (flag == "--victims") {
      if (value == "alternate") {
        o.victims = VictimOrder::kAlternate;
      } else if (value == "rotate") {
        o.victims = VictimOrder::kRotate;
      } else {
        o.victims = VictimOrder::kList;
        o.victim_list.clear();
        std::stringstream in(value);
        std::string item;
        while (std::getline(in, item, ',')) {
          if (!ParseUint(item, 1, 9, &u)) {
            return fail(
                "--victims must be alternate, rotate or a list of member numbers like "
                "1,3,2, not '" +
                value + "'");
          }
          o.victim_list.push_back(static_cast<uint32_t>(u));
        }
        if (o.victim_list.empty()) return fail("--victims: empty list");
      }
    } else if (flag == "--timeout-ms") {
      if (!u32(1, 3600000, &o.timeout_ms)) return fail("--timeout-ms must be 1..3600000");
    } else if (flag == "--value-size") {
      if (!u32(0, 1 << 20, &o.value_size)) return fail("--value-size must be 0..1048576");
    } else if (flag == "--keys") {
      if (!ParseUint(value, 1, 100000000, &o.keys)) return fail("--keys must be 1..1e8");
    } else if (flag == "--error-pause-ms") {
      if (!u32(0, 10000, &o.error_pause_ms)) return fail("--error-pause-ms must be 0..10000");
    } else if (flag == "--settle-ms") {
      if (!u32(0, 600000, &o.settle_ms)) return fail("--settle-ms must be 0..600000");
    } else if (flag == "--resume-timeout-s") {
      if (!u32(1, 3600, &o.resume_timeout_s)) return fail("--resume-timeout-s must be 1..3600");
    } else if (flag == "--serve-timeout-s") {
      if (!u32(1, 3600, &o.serve_timeout_s)) return fail("--serve-timeout-s must be 1..3600");
    } else if (flag == "--server-bin") {
      o.server_bin = value;
    } else if (flag == "--server-arg") {
      o.server_args.push_back(value);
    } else if (flag == "--etcd-bin") {
      o.etcd_bin = value;
    } else if (flag == "--etcd-arg") {
      o.etcd_args.push_back(value);
    } else {
      return fail("unknown option " + flag + " (with --failover)");
    }
  }
  for (uint32_t v : o.victim_list) {
    if (v > o.nodes) return fail("--victims: member " + std::to_string(v) + " > --nodes");
  }
  if (o.server_bin.empty()) o.server_bin = SelfDir() + "/totemkvd";
  for (System s : o.systems) {
    const std::string& bin = s == System::kTotemkvd ? o.server_bin : o.etcd_bin;
    if (::access(bin.c_str(), X_OK) != 0) {
      return fail(bin + " is not executable (" + SystemName(s) + ")");
    }
  }
  return o;
}

double MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// `n` distinct free ports of socket `type` on 127.0.0.1: all bound at once,
// then released. Empty on failure.
std::vector<uint16_t> FreePorts(int type, uint32_t n) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  for (uint32_t i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, type, 0);
    if (fd < 0) break;
    fds.push_back(fd);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      break;
    }
    ports.push_back(ntohs(a.sin_port));
  }
  for (int fd : fds) ::close(fd);
  if (ports.size() != n) ports.clear();
  return ports;
}

// Whether something accepts TCP connections on 127.0.0.1:port.
bool Listening(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

// A child process with stdout and stderr appended to a log file. Spawned
// with posix_spawn (no fork handlers run in this multi-threaded process).
class Process {
 public:
  static std::unique_ptr<Process> Spawn(const std::vector<std::string>& argv,
                                        const std::string& log_path, std::string* error) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      *error = "spawn " + argv[0] + ": " + std::strerror(rc);
      return nullptr;
    }
    return std::unique_ptr<Process>(new Process(pid));
  }
  ~Process() { Kill(); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // False once the process has exited (reaps it).
  bool Running() {
    if (pid_ <= 0) return false;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }
  void SendTerm() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
  }
  // Waits up to `timeout` for the process to exit, then SIGKILLs it.
  void WaitOrKill(milliseconds timeout) {
    WaitUntil([this] { return !Running(); }, timeout);
    Kill();
  }

 private:
  explicit Process(pid_t pid) : pid_(pid) {}
  pid_t pid_;
};

// Channel arguments shared by every channel of the benchmark: own
// connections (no sharing between channels with equal arguments), and
// short reconnect backoff so a restarted member is used again within a
// fraction of a second (gRPC's default starts at 1 s and grows to 120 s).
grpc::ChannelArguments BaseChannelArgs(int channel_id) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("tkv_bench.channel_id", channel_id);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS stays at its default: despite its
  // name it bounds how long one connection attempt (TCP + HTTP/2
  // handshake) may take, and etcd's handshake failed at 50 ms.
  return args;
}

grpc::Status PutOnce(etcdserverpb::KV::Stub* kv, const std::string& key, const std::string& value,
                     milliseconds timeout, std::string* peer = nullptr) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  etcdserverpb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  etcdserverpb::PutResponse resp;
  grpc::Status st = kv->Put(&ctx, req, &resp);
  if (peer != nullptr) *peer = ctx.peer();
  return st;
}

// One cluster member: how to start it, and the running process.
struct Member {
  std::string name;
  std::string endpoint;  // 127.0.0.1:PORT of the client (gRPC) listener
  uint16_t client_port = 0;
  std::vector<std::string> argv;
  std::string log;
  std::unique_ptr<Process> proc;
};

// N members of one system in `dir`.
class LocalCluster {
 public:
  LocalCluster(System system, const FailoverOptions& o, const std::string& dir)
      : system_(system), dir_(dir) {
    members_.resize(o.nodes);
    std::vector<uint16_t> tcp = FreePorts(SOCK_STREAM, 2 * o.nodes);
    std::vector<uint16_t> udp =
        system == System::kTotemkvd ? FreePorts(SOCK_DGRAM, o.nodes) : std::vector<uint16_t>();
    if (tcp.empty() || (system == System::kTotemkvd && udp.empty())) {
      error_ = "could not find free ports";
      return;
    }
    for (uint32_t i = 0; i < o.nodes; ++i) {
      Member& m = members_[i];
      m.client_port = tcp[i];
      m.endpoint = "127.0.0.1:" + std::to_string(tcp[i]);
      m.log =
          dir + "/" + (system == System::kTotemkvd ? "n" : "m") + std::to_string(i + 1) + ".log";
    }
    if (system == System::kTotemkvd) {
      const std::string key = dir + "/cluster.key";
      const totem::Status st = totem::WriteKeyFile(key);
      if (!st.ok()) {
        error_ = "cannot write " + key + ": " + st.ToString();
        return;
      }
      std::string cluster, client_urls;
      for (uint32_t i = 0; i < o.nodes; ++i) {
        const std::string name = "n" + std::to_string(i + 1);
        cluster += (i ? "," : "") + name + "=" + std::to_string(i + 1) +
                   "@127.0.0.1:" + std::to_string(udp[i]);
        client_urls += (i ? "," : "") + name + "=http://" + members_[i].endpoint;
      }
      for (uint32_t i = 0; i < o.nodes; ++i) {
        Member& m = members_[i];
        m.name = "n" + std::to_string(i + 1);
        m.argv = {o.server_bin,
                  "--name",
                  m.name,
                  "--data-dir",
                  dir + "/" + m.name,
                  "--listen-client-urls",
                  "http://" + m.endpoint,
                  "--initial-cluster",
                  cluster,
                  "--initial-cluster-client-urls",
                  client_urls,
                  "--key-file",
                  key};
        m.argv.insert(m.argv.end(), o.server_args.begin(), o.server_args.end());
      }
    } else {
      std::string cluster;
      for (uint32_t i = 0; i < o.nodes; ++i) {
        cluster += (i ? "," : "") + std::string("m") + std::to_string(i + 1) +
                   "=http://127.0.0.1:" + std::to_string(tcp[o.nodes + i]);
      }
      for (uint32_t i = 0; i < o.nodes; ++i) {
        Member& m = members_[i];
        m.name = "m" + std::to_string(i + 1);
        const std::string client = "http://" + m.endpoint;
        const std::string peer = "http://127.0.0.1:" + std::to_string(tcp[o.nodes + i]);
        m.argv = {o.etcd_bin,
                  "--name",
                  m.name,
                  "--data-dir",
                  dir + "/" + m.name + ".etcd",
                  "--listen-client-urls",
                  client,
                  "--advertise-client-urls",
                  client,
                  "--listen-peer-urls",
                  peer,
                  "--initial-advertise-peer-urls",
                  peer,
                  "--initial-cluster",
                  cluster,
                  "--initial-cluster-token",
                  "tkv-bench-failover-" + std::to_string(::getpid()),
                  "--initial-cluster-state",
                  "new",
                  "--logger",
                  "zap",
                  "--log-level",
                  "warn"};
        m.argv.insert(m.argv.end(), o.etcd_args.begin(), o.etcd_args.end());
      }
    }
  }
  ~LocalCluster() { StopAll(); }

  const std::string& error() const { return error_; }
  size_t size() const { return members_.size(); }
  const Member& member(size_t i) const { return members_[i]; }
  std::vector<std::string> Endpoints() const {
    std::vector<std::string> eps;
    for (const Member& m : members_) eps.push_back(m.endpoint);
    return eps;
  }

  bool Start(size_t i, std::string* error) {
    members_[i].proc = Process::Spawn(members_[i].argv, members_[i].log, error);
    return members_[i].proc != nullptr;
  }
  // The instant just before kill(2).
  Clock::time_point Kill(size_t i) {
    const Clock::time_point t = Clock::now();
    members_[i].proc->Kill();
    members_[i].proc.reset();
    return t;
  }
  // Name of a member that was started and has exited, or "".
  std::string Exited() {
    for (Member& m : members_) {
      if (m.proc != nullptr && !m.proc->Running()) return m.name;
    }
    return "";
  }
  // SIGTERM to every member at once, SIGKILL to those still running 10 s
  // later.
  void StopAll() {
    for (Member& m : members_) {
      if (m.proc != nullptr) m.proc->SendTerm();
    }
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    for (Member& m : members_) {
      if (m.proc == nullptr) continue;
      m.proc->WaitOrKill(std::chrono::duration_cast<milliseconds>(
          std::max(deadline - Clock::now(), Clock::duration::zero())));
      m.proc.reset();
    }
  }
  std::string LogTails(size_t lines) const {
    std::string out;
    for (const Member& m : members_) {
      std::ifstream in(m.log);
      std::vector<std::string> all;
      std::string line;
      while (std::getline(in, line)) all.push_back(line);
      out += "---- " + m.name + " (" + m.log + ")\n";
      for (size_t k = all.size() > lines ? all.size() - lines : 0; k < all.size(); ++k) {
        out += all[k] + "\n";
      }
    }
    return out;
  }

  // Waits until member i accepts a put on a fresh channel to it alone; on
  // timeout `*last_error` is the last put's error.
  bool WaitServes(size_t i, milliseconds timeout, std::string* last_error) {
    // A channel whose first connection attempt was refused takes seconds to
    // try again, whatever the backoff settings: connect only once the port
    // accepts connections.
    const auto deadline = Clock::now() + timeout;
    if (!WaitUntil([&] { return Listening(members_[i].client_port); }, timeout)) {
      *last_error = "port " + std::to_string(members_[i].client_port) + " not listening";
      return false;
    }
    timeout = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    auto ch = grpc::CreateCustomChannel(members_[i].endpoint, grpc::InsecureChannelCredentials(),
                                        BaseChannelArgs(-1 - static_cast<int>(i)));
    auto kv = etcdserverpb::KV::NewStub(ch);
    return WaitUntil(
        [&] {
          const grpc::Status st =
              PutOnce(kv.get(), "tkvbench-failover/probe", "x", milliseconds(1000));
          if (st.ok()) return true;
          *last_error = std::string(CodeName(st.error_code())) + ": " + st.error_message();
          std::this_thread::sleep_for(milliseconds(20));
          return false;
        },
        timeout);
  }

  // The index of the member the majority of members name leader in
  // Maintenance.Status (etcd: the raft leader; totemkvd: the ring
  // representative), if any.
  std::optional<size_t> Leader() const {
    std::map<uint64_t, int> votes;
    std::map<uint64_t, size_t> index_of_id;
    for (size_t i = 0; i < members_.size(); ++i) {
      if (members_[i].proc == nullptr) continue;
      auto stub = etcdserverpb::Maintenance::NewStub(
          grpc::CreateChannel(members_[i].endpoint, grpc::InsecureChannelCredentials()));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + milliseconds(2000));
      etcdserverpb::StatusRequest req;
      etcdserverpb::StatusResponse resp;
      if (!stub->Status(&ctx, req, &resp).ok()) continue;
      index_of_id[resp.header().member_id()] = i;
      if (resp.leader() != 0) ++votes[resp.leader()];
    }
    for (const auto& [id, n] : votes) {
      if (2 * static_cast<size_t>(n) > members_.size() && index_of_id.count(id) != 0) {
        return index_of_id[id];
      }
    }
    return std::nullopt;
  }

 private:
  System system_;
  std::string dir_;
  std::string error_;
  std::vector<Member> members_;
};

// One finished put of a load client. Times in microseconds since the load
// started.
struct Sample {
  int64_t start_us = 0;
  int64_t end_us = 0;
  grpc::StatusCode code = grpc::OK;
  int endpoint = -1;  // member index the request went to, -1 if unknown
};

// --clients closed-loop put clients, each with its own round_robin channel
// over every endpoint.
class Load {
 public:
  Load(const FailoverOptions& o, const std::vector<std::string>& endpoints)
      : o_(o), endpoints_(endpoints), clients_(o.clients) {
    std::string target = "ipv4:";
    for (size_t i = 0; i < endpoints.size(); ++i) {
      target += (i ? "," : "") + endpoints[i];
      const std::string port = endpoints[i].substr(endpoints[i].rfind(':') + 1);
      port_index_[port] = static_cast<int>(i);
    }
    for (uint32_t c = 0; c < o.clients; ++c) {
      grpc::ChannelArguments args = BaseChannelArgs(static_cast<int>(c));
      args.SetLoadBalancingPolicyName("round_robin");
      clients_[c].kv = etcdserverpb::KV::NewStub(
          grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
      clients_[c].last_ok_by_endpoint = std::vector<std::atomic<int64_t>>(endpoints.size());
      for (auto& a : clients_[c].last_ok_by_endpoint) a.store(-1);
    }
  }
  ~Load() { Stop(); }

  void Start() {
    t0_ = Clock::now();
    for (uint32_t c = 0; c < o_.clients; ++c) {
      clients_[c].thread = std::thread([this, c] { Loop(c); });
    }
  }
  void Stop() {
    stop_.store(true);
    for (Client& c : clients_) {
      if (c.thread.joinable()) c.thread.join();
    }
  }

  int64_t Us(Clock::time_point t) const {
    return std::chrono::duration_cast<std::chrono::microseconds>(t - t0_).count();
  }
  uint32_t clients() const { return o_.clients; }
  // Every client has had a put succeed that completed after `after_us`
  // (through member `endpoint`, if >= 0).
  bool AllSucceededAfter(int64_t after_us, int endpoint = -1) const {
    for (const Client& c : clients_) {
      const int64_t last = endpoint < 0 ? c.last_ok.load() : c.last_ok_by_endpoint[endpoint].load();
      if (last <= after_us) return false;
    }
    return true;
  }
  // A copy of client c's samples that completed at or after `from_us`.
  std::vector<Sample> Samples(uint32_t c, int64_t from_us) const {
    std::lock_guard<std::mutex> lock(clients_[c].mu);
    const auto& s = clients_[c].samples;
    auto it = std::lower_bound(s.begin(), s.end(), from_us,
                               [](const Sample& x, int64_t t) { return x.end_us < t; });
    return std::vector<Sample>(it, s.end());
  }

 private:
  struct Client {
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::thread thread;
    mutable std::mutex mu;
    std::vector<Sample> samples;  // in completion order; guarded by mu
    std::atomic<int64_t> last_ok{-1};
    std::vector<std::atomic<int64_t>> last_ok_by_endpoint;
  };

  void Loop(uint32_t index) {
    Client& c = clients_[index];
    std::mt19937_64 rng(1000 + index);
    std::uniform_int_distribution<uint64_t> key_dist(0, o_.keys - 1);
    const std::string value(o_.value_size, static_cast<char>('a' + index % 26));
    char key[64];
    std::string peer;
    while (!stop_.load(std::memory_order_relaxed)) {
      std::snprintf(key, sizeof(key), "tkvbench-failover/%08llu",
                    static_cast<unsigned long long>(key_dist(rng)));
      Sample s;
      s.start_us = Us(Clock::now());
      const grpc::Status st = PutOnce(c.kv.get(), key, value, milliseconds(o_.timeout_ms), &peer);
      s.end_us = Us(Clock::now());
      s.code = st.error_code();
      const size_t colon = peer.rfind(':');
      if (colon != std::string::npos) {
        const auto it = port_index_.find(peer.substr(colon + 1));
        if (it != port_index_.end()) s.endpoint = it->second;
      }
      {
        std::lock_guard<std::mutex> lock(c.mu);
        c.samples.push_back(s);
      }
      if (st.ok()) {
        c.last_ok.store(s.end_us);
        if (s.endpoint >= 0) c.last_ok_by_endpoint[s.endpoint].store(s.end_us);
      } else if (o_.error_pause_ms > 0) {
        std::this_thread::sleep_for(milliseconds(o_.error_pause_ms));
      }
    }
  }

  const FailoverOptions& o_;
  std::vector<std::string> endpoints_;
  std::map<std::string, int> port_index_;
  std::vector<Client> clients_;
  std::atomic<bool> stop_{false};
  Clock::time_point t0_;
};

struct TrialResult {
  size_t victim = 0;
  bool leader = false;
  bool leader_known = false;
  double unavailable_ms = 0;  // max over clients of the gap spanning the kill
  double client_gap_min_ms = 0, client_gap_median_ms = 0;
  double resumed_ms = 0;       // kill -> last client's first success after it
  double serve_ms = 0;         // restart -> the victim accepted a put
  bool served = false;         // it did, within --serve-timeout-s
  double clients_back_ms = 0;  // restart -> every client wrote through the victim again
  double rejoin_gap_ms = 0;
  uint64_t errors = 0;
  uint64_t rejoin_errors = 0;    // of `errors`, completed after the restart
  uint64_t pre_kill_errors = 0;  // since the previous trial: the cluster was not healthy
  // Of `errors`, answered by (or failed on the connection to) the victim /
  // another member; the rest have no known peer.
  uint64_t errors_from_victim = 0, errors_from_survivors = 0;
  std::map<std::string, uint64_t> error_codes;
  uint64_t in_flight = 0, in_flight_to_victim = 0, in_flight_failed = 0;
};

std::string CodesText(const std::map<std::string, uint64_t>& codes) {
  std::string s;
  for (const auto& [code, n] : codes) s += (s.empty() ? "" : ",") + code + "=" + std::to_string(n);
  return s.empty() ? "none" : s;
}

// Computes a trial's numbers from the clients' samples: kill at `kill_us`,
// restart at `restart_us`, trial over at `end_us`.
void Analyze(const Load& load, int64_t from_us, int64_t kill_us, int64_t restart_us, int64_t end_us,
             TrialResult* r) {
  std::vector<double> gaps;
  for (uint32_t c = 0; c < load.clients(); ++c) {
    const std::vector<Sample> samples = load.Samples(c, from_us);
    // The client's write gaps: between the completions of consecutive
    // successful puts. A gap belongs to the failover if it starts at the
    // last success at or before the kill or later, but before the restart
    // (it may end after the restart); to the rejoin if it starts later.
    int64_t prev_ok = -1;
    double failover_gap_us = 0, rejoin_gap_us = 0;
    int64_t first_ok_after = -1;
    for (const Sample& s : samples) {
      if (s.end_us > end_us) break;
      const bool ok = s.code == grpc::OK;
      if (s.end_us <= kill_us && !ok) ++r->pre_kill_errors;
      if (s.end_us > kill_us) {
        if (ok && first_ok_after < 0) first_ok_after = s.end_us;
        if (s.start_us < kill_us) {
          ++r->in_flight;
          if (s.endpoint == static_cast<int>(r->victim)) ++r->in_flight_to_victim;
          if (!ok) ++r->in_flight_failed;
        }
        if (!ok) {
          ++r->errors;
          ++r->error_codes[CodeName(s.code)];
          if (s.endpoint == static_cast<int>(r->victim)) {
            ++r->errors_from_victim;
          } else if (s.endpoint >= 0) {
            ++r->errors_from_survivors;
          }
          if (s.end_us >= restart_us) ++r->rejoin_errors;
        }
        if (ok) {
          // A client with no success before the kill in this trial: its
          // gap counts from the kill.
          const int64_t from = prev_ok >= 0 ? prev_ok : kill_us;
          const double gap = static_cast<double>(s.end_us - from);
          if (from < restart_us) {
            failover_gap_us = std::max(failover_gap_us, gap);
          } else {
            rejoin_gap_us = std::max(rejoin_gap_us, gap);
          }
        }
      }
      if (ok) prev_ok = s.end_us;
    }
    if (first_ok_after >= 0) {
      gaps.push_back(failover_gap_us / 1000.0);
      r->resumed_ms =
          std::max(r->resumed_ms, static_cast<double>(first_ok_after - kill_us) / 1000.0);
    }
    r->rejoin_gap_ms = std::max(r->rejoin_gap_ms, rejoin_gap_us / 1000.0);
  }
  const Stats g = Summarize(gaps);
  r->unavailable_ms = g.max;
  r->client_gap_min_ms = g.min;
  r->client_gap_median_ms = g.median;
}

// Runs the trials against one system; returns the exit code contribution
// (0, 1 or 4) and prints the per-trial lines and the summary line.
int RunSystem(System system, const FailoverOptions& o, const std::string& work_dir) {
  const char* name = SystemName(system);
  const std::string dir = work_dir + "/" + name;
  std::filesystem::create_directories(dir);
  LocalCluster cluster(system, o, dir);
  if (!cluster.error().empty()) {
    std::fprintf(stderr, "tkv-bench: %s: %s\n", name, cluster.error().c_str());
    return 1;
  }
  std::printf(
      "failover: %s, %u members on 127.0.0.1, %u clients (each: round_robin over all "
      "endpoints), put %u B, timeout %u ms, load average %.2f, logs in %s\n",
      name, o.nodes, o.clients, o.value_size, o.timeout_ms, LoadAverage1(), dir.c_str());
  std::fflush(stdout);
  const auto start = Clock::now();
  for (size_t i = 0; i < cluster.size(); ++i) {
    std::string error;
    if (!cluster.Start(i, &error)) {
      std::fprintf(stderr, "tkv-bench: %s: %s\n", name, error.c_str());
      return 1;
    }
  }
  // No write before every member listens (totemkvd opens its client port
  // once it is in a ring): a totemkvd without catch-up that joins after the
  // first write stays behind.
  WaitUntil(
      [&] {
        for (size_t i = 0; i < cluster.size(); ++i) {
          if (!Listening(cluster.member(i).client_port)) return false;
        }
        return true;
      },
      std::chrono::seconds(30));
  for (size_t i = 0; i < cluster.size(); ++i) {
    std::string last_error;
    if (!cluster.WaitServes(i, std::chrono::seconds(30), &last_error)) {
      const std::string exited = cluster.Exited();
      std::fprintf(stderr, "tkv-bench: %s: %s did not accept a put within 30 s (%s)%s; logs:\n%s",
                   name, cluster.member(i).name.c_str(), last_error.c_str(),
                   exited.empty() ? "" : (" (" + exited + " exited)").c_str(),
                   cluster.LogTails(10).c_str());
      return 1;
    }
  }
  std::printf("cluster up in %.0f ms: %s\n", MsBetween(start, Clock::now()),
              [&] {
                std::string s;
                for (size_t i = 0; i < cluster.size(); ++i) {
                  s += (i ? " " : "") + cluster.member(i).name + "=" + cluster.member(i).endpoint;
                }
                return s;
              }()
                  .c_str());
  std::fflush(stdout);

  Load load(o, cluster.Endpoints());
  load.Start();
  // Every client writes through every member before the first trial.
  for (size_t i = 0; i < cluster.size(); ++i) {
    if (!WaitUntil([&] { return load.AllSucceededAfter(0, static_cast<int>(i)); },
                   std::chrono::seconds(10))) {
      std::fprintf(stderr, "tkv-bench: %s: not every client wrote through %s within 10 s\n", name,
                   cluster.member(i).name.c_str());
      return 1;
    }
  }

  std::vector<TrialResult> results;
  int rc = 0;
  std::vector<uint32_t> kills(cluster.size(), 0);  // per member, for the victim rotation
  int64_t trial_from_us = 0;
  for (uint32_t t = 0; t < o.trials; ++t) {
    std::this_thread::sleep_for(milliseconds(o.settle_ms));
    TrialResult r;
    const std::optional<size_t> leader = cluster.Leader();
    r.leader_known = leader.has_value();
    if (o.victims == VictimOrder::kList) {
      r.victim = o.victim_list[t % o.victim_list.size()] - 1;
    } else if (o.victims == VictimOrder::kRotate || !leader) {
      r.victim = t % cluster.size();
    } else if (t % 2 == 0) {
      r.victim = *leader;
    } else {
      // The member other than the leader killed least often so far.
      std::optional<size_t> pick;
      for (size_t i = 0; i < cluster.size(); ++i) {
        if (i != *leader && (!pick || kills[i] < kills[*pick])) pick = i;
      }
      r.victim = *pick;
    }
    ++kills[r.victim];
    r.leader = leader && *leader == r.victim;
    // Load must be flowing on every client when the kill comes.
    const int64_t recent_us = load.Us(Clock::now()) - 1000000;
    if (!load.AllSucceededAfter(recent_us)) {
      std::fprintf(stderr,
                   "tkv-bench: %s: trial %u: some client had no successful put in the last "
                   "second before the kill\n",
                   name, t + 1);
      rc = 4;
      break;
    }
    const pid_t pid = cluster.member(r.victim).proc->pid();
    const Clock::time_point kill_t = cluster.Kill(r.victim);
    const int64_t kill_us = load.Us(kill_t);
    if (!WaitUntil([&] { return load.AllSucceededAfter(kill_us); },
                   std::chrono::seconds(o.resume_timeout_s))) {
      std::fprintf(stderr,
                   "tkv-bench: %s: trial %u: puts did not resume on every client within %u s "
                   "after killing %s; logs:\n%s",
                   name, t + 1, o.resume_timeout_s, cluster.member(r.victim).name.c_str(),
                   cluster.LogTails(10).c_str());
      rc = 4;
      break;
    }
    const Clock::time_point restart_t = Clock::now();
    const int64_t restart_us = load.Us(restart_t);
    std::string error;
    if (!cluster.Start(r.victim, &error)) {
      std::fprintf(stderr, "tkv-bench: %s: %s\n", name, error.c_str());
      rc = 4;
      break;
    }
    std::string serve_error;
    r.served = cluster.WaitServes(r.victim, std::chrono::seconds(o.serve_timeout_s), &serve_error);
    if (r.served) {
      r.serve_ms = MsBetween(restart_t, Clock::now());
      if (WaitUntil([&] { return load.AllSucceededAfter(restart_us, static_cast<int>(r.victim)); },
                    std::chrono::seconds(10))) {
        r.clients_back_ms = MsBetween(restart_t, Clock::now());
      } else {
        std::printf("  (warning: not every client wrote through the restarted %s within 10 s)\n",
                    cluster.member(r.victim).name.c_str());
      }
    }
    const int64_t end_us = load.Us(Clock::now());
    Analyze(load, trial_from_us, kill_us, restart_us, end_us, &r);
    trial_from_us = end_us;
    char serve_text[64];
    if (r.served) {
      std::snprintf(serve_text, sizeof(serve_text), "serve_ms=%.0f", r.serve_ms);
    } else {
      std::snprintf(serve_text, sizeof(serve_text), "DID NOT SERVE within %u s", o.serve_timeout_s);
    }
    std::printf(
        "trial %u: kill -9 %s (pid %d, %s): unavailable_ms=%.1f (per client: min %.1f median "
        "%.1f) resumed_ms=%.1f errors=%llu [%s; by victim %llu, by others %llu] in_flight=%llu "
        "(to victim %llu, failed %llu); "
        "restart: %s clients_back_ms=%.0f rejoin_gap_ms=%.1f rejoin_errors=%llu\n",
        t + 1, cluster.member(r.victim).name.c_str(), static_cast<int>(pid),
        !r.leader_known ? "leader unknown"
        : r.leader      ? "leader"
                        : "follower",
        r.unavailable_ms, r.client_gap_min_ms, r.client_gap_median_ms, r.resumed_ms,
        static_cast<unsigned long long>(r.errors), CodesText(r.error_codes).c_str(),
        static_cast<unsigned long long>(r.errors_from_victim),
        static_cast<unsigned long long>(r.errors_from_survivors),
        static_cast<unsigned long long>(r.in_flight),
        static_cast<unsigned long long>(r.in_flight_to_victim),
        static_cast<unsigned long long>(r.in_flight_failed), serve_text, r.clients_back_ms,
        r.rejoin_gap_ms, static_cast<unsigned long long>(r.rejoin_errors));
    if (r.pre_kill_errors > 0) {
      std::printf("  (warning: %llu puts failed between the previous trial and this kill)\n",
                  static_cast<unsigned long long>(r.pre_kill_errors));
    }
    if (!r.served) {
      std::fprintf(stderr,
                   "tkv-bench: %s: trial %u: restarted %s did not accept a put within %u s "
                   "(last: %s); stopping the trials; logs:\n%s",
                   name, t + 1, cluster.member(r.victim).name.c_str(), o.serve_timeout_s,
                   serve_error.c_str(), cluster.LogTails(10).c_str());
      rc = 4;
      results.push_back(std::move(r));
      break;
    }
    std::fflush(stdout);
    results.push_back(std::move(r));
  }
  load.Stop();
  const std::string exited = cluster.Exited();
  if (!exited.empty()) {
    std::fprintf(stderr, "tkv-bench: %s: %s exited on its own; logs:\n%s", name, exited.c_str(),
                 cluster.LogTails(10).c_str());
    rc = 4;
  }
  cluster.StopAll();

  std::vector<double> unavailable, leader_unavailable, follower_unavailable, resumed, serve, rejoin;
  uint64_t errors = 0, in_flight = 0, in_flight_failed = 0;
  std::map<std::string, uint64_t> codes;
  for (const TrialResult& r : results) {
    unavailable.push_back(r.unavailable_ms);
    (r.leader ? leader_unavailable : follower_unavailable).push_back(r.unavailable_ms);
    resumed.push_back(r.resumed_ms);
    if (r.served) serve.push_back(r.serve_ms);
    rejoin.push_back(r.rejoin_gap_ms);
    errors += r.errors;
    in_flight += r.in_flight;
    in_flight_failed += r.in_flight_failed;
    for (const auto& [code, n] : r.error_codes) codes[code] += n;
  }
  const Stats u = Summarize(unavailable);
  // "median M max X" of `v` in ms, or "-" when empty.
  auto median_max = [](const std::vector<double>& v, int decimals) {
    if (v.empty()) return std::string("-");
    const Stats st = Summarize(v);
    char buf[96];
    std::snprintf(buf, sizeof(buf), "median %.*f max %.*f", decimals, st.median, decimals, st.max);
    return std::string(buf);
  };
  std::printf(
      "  %s: unavailable_ms of leader kills (%zu): %s; of other kills (%zu): %s; restarted "
      "victim serving after ms (%zu of %zu): %s; rejoin_gap_ms: %s\n",
      name, leader_unavailable.size(), median_max(leader_unavailable, 1).c_str(),
      follower_unavailable.size(), median_max(follower_unavailable, 1).c_str(), serve.size(),
      results.size(), median_max(serve, 0).c_str(), median_max(rejoin, 1).c_str());
  std::printf(
      "failover %s: trials=%zu unavailable_ms min=%.1f median=%.1f max=%.1f errors=%llu "
      "in_flight=%llu in_flight_failed=%llu error_codes=%s resumed_ms_max=%.1f load1=%.2f%s\n",
      name, results.size(), u.min, u.median, u.max, static_cast<unsigned long long>(errors),
      static_cast<unsigned long long>(in_flight), static_cast<unsigned long long>(in_flight_failed),
      CodesText(codes).c_str(), Summarize(resumed).max, LoadAverage1(),
      rc != 0 ? " INCOMPLETE" : "");
  std::fflush(stdout);
  return rc;
}

}  // namespace

int RunTkvFailover(int argc, char** argv) {
  const std::optional<FailoverOptions> parsed = ParseFailoverOptions(argc, argv);
  if (!parsed) return 2;
  const FailoverOptions& o = *parsed;
  char tmpl[] = "/tmp/tkv-bench-failover-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    std::perror("tkv-bench: mkdtemp");
    return 1;
  }
  const std::string dir = tmpl;
  int rc = 0;
  for (System s : o.systems) {
    const int r = RunSystem(s, o, dir);
    rc = std::max(rc, r);
  }
  if (o.keep) {
    std::printf("work dir kept: %s\n", dir.c_str());
  } else {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return rc;
}

}  // namespace totemkv::bench

// totem-bench --failover: crash recovery of a ring of real processes.
//
// N `totem-node` processes (default 5) form a ring on 127.0.0.1, each
// sending at a fixed rate. Each trial kills one of them with SIGKILL (no
// goodbye: exactly what a crash looks like to the others) and measures, from
// the instant before kill(2):
//  - installed: until every survivor has installed the new regular
//    configuration (all survivors, without the victim);
//  - resumed:   until every survivor has delivered a message in it (ordered
//    traffic flows again).
// The times come from the nodes themselves: totem-node prints CLOCK_MONOTONIC
// microseconds with each "config regular ..." and "resumed ..." line, the
// same clock the benchmark reads before kill(2), so the harness's polling
// adds nothing to the numbers. The victim is then restarted with its state
// directory and the time until all N are back in one configuration is
// reported too (it includes the process start). Victims rotate over the
// node ids, representative included.
//
// Then a saturating-load run: a fresh ring where every node submits as fast
// as its queue allows for --load-seconds; every configuration change after
// the ring first formed is spurious (nobody failed) and is counted.
//
// Reference (measured on this machine, issue 3): corosync 3.1.7 takes about
// 215 ms with token=100 ms on an idle ring and breaks into repeated spurious
// memberships under load at that setting; with its defaults about 7.8 s.
#include "failover.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace totem::bench {

namespace {

using totemkv::bench::LoadAverage1;
using totemkv::bench::SelfDir;
using totemkv::bench::Stats;
using totemkv::bench::Summarize;
using totemkv::bench::WaitUntil;

struct FailoverOptions {
  uint32_t nodes = 5;
  uint32_t trials = 5;
  uint64_t rate = 200;  // msgs/s per node during the trials
  uint64_t size = 100;
  double load_seconds = 5;        // saturating-load run; 0 skips it
  uint32_t token_timeout_us = 0;  // 0: the library default
  uint32_t join_timeout_us = 0;
  uint32_t consensus_timeout_us = 0;
  uint32_t merge_timeout_us = 0;
  std::string node_bin;
  std::string keygen_bin;
  bool keep = false;
};

void PrintUsage() {
  std::fprintf(stderr,
               "usage: totem-bench --failover [options]\n"
               "  --trials N               kill -9 trials (default 5)\n"
               "  --nodes N                ring size, 3..16 (default 5)\n"
               "  --rate R                 msgs/s each node sends during the trials (default 200)\n"
               "  --size B                 message size (default 100)\n"
               "  --load-seconds S         saturating-load run length; 0 skips it (default 5)\n"
               "  --token-timeout-us N     RingConfig overrides passed to every node (default:\n"
               "  --join-timeout-us N      the library's defaults)\n"
               "  --consensus-timeout-us N\n"
               "  --merge-timeout-us N\n"
               "  --node-bin PATH          totem-node (default: next to totem-bench)\n"
               "  --keygen-bin PATH        totem-keygen (default: next to totem-bench)\n"
               "  --keep                   keep the work directory (outputs, state files)\n");
}

std::optional<FailoverOptions> ParseFailoverOptions(int argc, char** argv) {
  FailoverOptions o;
  auto fail = [](const std::string& why) -> std::optional<FailoverOptions> {
    std::fprintf(stderr, "totem-bench: %s\n", why.c_str());
    PrintUsage();
    return std::nullopt;
  };
  auto uint_of = [](const std::string& s, uint64_t max, uint64_t* out) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
    errno = 0;
    const unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
    if (errno != 0 || v > max) return false;
    *out = v;
    return true;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--failover") continue;
    if (flag == "--keep") {
      o.keep = true;
      continue;
    }
    if (flag == "-h" || flag == "--help") {
      PrintUsage();
      std::exit(0);
    }
    if (i + 1 >= argc) return fail("missing value for " + flag);
    const std::string value = argv[++i];
    uint64_t u = 0;
    if (flag == "--trials") {
      if (!uint_of(value, 1000, &u) || u < 1) return fail("--trials must be 1..1000");
      o.trials = static_cast<uint32_t>(u);
    } else if (flag == "--nodes") {
      if (!uint_of(value, 16, &u) || u < 3) return fail("--nodes must be 3..16");
      o.nodes = static_cast<uint32_t>(u);
    } else if (flag == "--rate") {
      if (!uint_of(value, 1000000, &u) || u < 1) return fail("--rate must be 1..1000000");
      o.rate = u;
    } else if (flag == "--size") {
      if (!uint_of(value, 60000, &u) || u < 20) return fail("--size must be 20..60000");
      o.size = u;
    } else if (flag == "--load-seconds") {
      if (!uint_of(value, 3600, &u)) return fail("--load-seconds must be 0..3600");
      o.load_seconds = static_cast<double>(u);
    } else if (flag == "--token-timeout-us") {
      if (!uint_of(value, 0xFFFFFFFFu, &u)) return fail("bad --token-timeout-us");
      o.token_timeout_us = static_cast<uint32_t>(u);
    } else if (flag == "--join-timeout-us") {
      if (!uint_of(value, 0xFFFFFFFFu, &u)) return fail("bad --join-timeout-us");
      o.join_timeout_us = static_cast<uint32_t>(u);
    } else if (flag == "--consensus-timeout-us") {
      if (!uint_of(value, 0xFFFFFFFFu, &u)) return fail("bad --consensus-timeout-us");
      o.consensus_timeout_us = static_cast<uint32_t>(u);
    } else if (flag == "--merge-timeout-us") {
      if (!uint_of(value, 0xFFFFFFFFu, &u)) return fail("bad --merge-timeout-us");
      o.merge_timeout_us = static_cast<uint32_t>(u);
    } else if (flag == "--node-bin") {
      o.node_bin = value;
    } else if (flag == "--keygen-bin") {
      o.keygen_bin = value;
    } else {
      return fail("unknown option " + flag + " (with --failover)");
    }
  }
  if (o.node_bin.empty()) o.node_bin = SelfDir() + "/totem-node";
  if (o.keygen_bin.empty()) o.keygen_bin = SelfDir() + "/totem-keygen";
  for (const std::string& bin : {o.node_bin, o.keygen_bin}) {
    if (::access(bin.c_str(), X_OK) != 0) return fail(bin + " is not executable");
  }
  return o;
}

uint64_t MonotonicUs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A child process with stdout and stderr in a file.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::string& out_path) : out_(out_path) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::close(fd);
      }
      ::execv(args[0], args.data());
      std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
      ::_exit(127);
    }
  }
  ~Process() { Kill(); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    exit_code_ = -SIGKILL;
  }
  // SIGTERM, then waits up to `timeout` (then SIGKILL); returns the exit
  // code (or -signal).
  int Terminate(std::chrono::milliseconds timeout) {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
    return Wait(timeout);
  }
  // Waits up to `timeout` for the process to exit (then SIGKILL).
  int Wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return exit_code_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        return exit_code_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    Kill();
    return exit_code_;
  }
  std::string Output() const { return ReadWholeFile(out_); }

 private:
  pid_t pid_ = -1;
  int exit_code_ = 0;
  std::string out_;
};

// A "config regular ..." line with its timestamp.
struct RegularLine {
  std::string id;
  std::vector<uint32_t> members;
  uint64_t t_us = 0;
};

std::string Field(const std::string& line, const std::string& key) {
  const size_t at = line.find(" " + key + "=");
  if (at == std::string::npos) return "";
  const size_t begin = at + key.size() + 2;
  return line.substr(begin, line.find(' ', begin) - begin);
}

// What one node's output says: regular configurations, and when it first
// delivered in each (by id).
struct NodeView {
  std::vector<RegularLine> regulars;
  std::vector<std::pair<std::string, uint64_t>> resumed;
  std::vector<uint64_t> transitional_t;
  uint64_t transitional_count_after(uint64_t t) const {
    return static_cast<uint64_t>(std::count_if(transitional_t.begin(), transitional_t.end(),
                                               [t](uint64_t x) { return x > t; }));
  }
  std::optional<uint64_t> ResumedAt(const std::string& id) const {
    for (const auto& [rid, t] : resumed) {
      if (rid == id) return t;
    }
    return std::nullopt;
  }
};

NodeView ParseNodeOutput(const std::string& out) {
  NodeView v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("config regular ", 0) == 0) {
      RegularLine r;
      r.id = Field(line, "id");
      r.t_us = std::strtoull(Field(line, "t_us").c_str(), nullptr, 10);
      const std::string m = Field(line, "members");
      if (m.size() >= 2) {
        std::stringstream ms(m.substr(1, m.size() - 2));
        std::string item;
        while (std::getline(ms, item, ',')) {
          r.members.push_back(static_cast<uint32_t>(std::strtoul(item.c_str(), nullptr, 10)));
        }
      }
      v.regulars.push_back(r);
    } else if (line.rfind("config transitional ", 0) == 0) {
      v.transitional_t.push_back(std::strtoull(Field(line, "t_us").c_str(), nullptr, 10));
    } else if (line.rfind("resumed ", 0) == 0) {
      v.resumed.emplace_back(Field(line, "id"),
                             std::strtoull(Field(line, "t_us").c_str(), nullptr, 10));
    }
  }
  return v;
}

// N totem-node processes on 127.0.0.1 with state directories under `dir`.
class ProcessRing {
 public:
  ProcessRing(const FailoverOptions& o, const std::string& dir, const std::string& name,
              uint64_t rate)
      : o_(o), dir_(dir + "/" + name), rate_(rate), procs_(o.nodes), starts_(o.nodes, 0) {
    ::mkdir(dir_.c_str(), 0700);
    key_ = dir_ + "/cluster.key";
    Process keygen({o.keygen_bin, key_}, dir_ + "/keygen.out");
    if (keygen.Wait(std::chrono::seconds(10)) != 0) {
      std::fprintf(stderr, "totem-bench: %s failed: %s\n", o.keygen_bin.c_str(),
                   keygen.Output().c_str());
      std::exit(1);
    }
    // Distinct free ports: bind them all at once, then release them.
    std::vector<int> fds;
    for (uint32_t i = 0; i < o.nodes; ++i) {
      const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof(a);
      if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
          ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        std::perror("totem-bench: bind");
        std::exit(1);
      }
      fds.push_back(fd);
      peers_ += (peers_.empty() ? "" : ",") + std::to_string(i + 1) +
                "@127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    }
    for (int fd : fds) ::close(fd);
  }

  void Start(uint32_t i) {
    ++starts_[i];
    std::vector<std::string> argv = {o_.node_bin,
                                     "--id",
                                     std::to_string(i + 1),
                                     "--peers",
                                     peers_,
                                     "--key-file",
                                     key_,
                                     "--state-dir",
                                     dir_ + "/state" + std::to_string(i + 1),
                                     "--run-seconds",
                                     "3600",
                                     "--size",
                                     std::to_string(o_.size),
                                     "--linger-ms",
                                     "0"};
    // At a fixed rate the per-second stats lines are noise; under load they
    // are the throughput measurement.
    if (rate_ != 0) argv.push_back("--quiet");
    if (rate_ != 0) {
      argv.push_back("--rate");
      argv.push_back(std::to_string(rate_));
    }
    auto pass = [&argv](const char* flag, uint32_t v) {
      if (v == 0) return;
      argv.push_back(flag);
      argv.push_back(std::to_string(v));
    };
    pass("--token-timeout-us", o_.token_timeout_us);
    pass("--join-timeout-us", o_.join_timeout_us);
    pass("--consensus-timeout-us", o_.consensus_timeout_us);
    pass("--merge-timeout-us", o_.merge_timeout_us);
    procs_[i] = std::make_unique<Process>(argv, OutPath(i));
  }
  void StartAll() {
    for (uint32_t i = 0; i < o_.nodes; ++i) Start(i);
  }
  void Kill(uint32_t i) { procs_[i]->Kill(); }

  // SIGTERM to all; returns the number that did not exit with 0.
  int StopAll() {
    int bad = 0;
    for (auto& p : procs_) {
      if (p != nullptr && p->Terminate(std::chrono::seconds(10)) != 0) ++bad;
    }
    return bad;
  }

  NodeView View(uint32_t i) const { return ParseNodeOutput(ReadWholeFile(OutPath(i))); }
  std::string OutPath(uint32_t i) const {
    return dir_ + "/node" + std::to_string(i + 1) + "." + std::to_string(starts_[i]) + ".out";
  }

  // Waits until every node of `nodes` has, as its latest regular
  // configuration installed after `after_us`, one with exactly `members`,
  // the same at all, and has delivered in it. Returns (install, resume)
  // times: the latest over the nodes.
  struct Agreed {
    std::string id;
    uint64_t installed_us = 0;
    uint64_t resumed_us = 0;
    uint64_t extra_regulars = 0;  // regular configurations before the agreed one, after after_us
  };
  std::optional<Agreed> WaitAgreed(const std::vector<uint32_t>& nodes,
                                   const std::vector<uint32_t>& members, uint64_t after_us,
                                   std::chrono::milliseconds timeout) const {
    Agreed agreed;
    const bool ok = WaitUntil(
        [&] {
          agreed = Agreed{};
          for (uint32_t i : nodes) {
            const NodeView v = View(i);
            if (v.regulars.empty()) return false;
            const RegularLine& last = v.regulars.back();
            if (last.t_us <= after_us || last.members != members) return false;
            if (!agreed.id.empty() && agreed.id != last.id) return false;
            const std::optional<uint64_t> resumed = v.ResumedAt(last.id);
            if (!resumed) return false;
            agreed.id = last.id;
            agreed.installed_us = std::max(agreed.installed_us, last.t_us);
            agreed.resumed_us = std::max(agreed.resumed_us, *resumed);
            const auto later = static_cast<uint64_t>(
                std::count_if(v.regulars.begin(), v.regulars.end(),
                              [after_us](const RegularLine& r) { return r.t_us > after_us; }));
            agreed.extra_regulars = std::max(agreed.extra_regulars, later - 1);
          }
          return true;
        },
        timeout);
    if (!ok) return std::nullopt;
    return agreed;
  }

  std::string Describe() const {
    std::string s;
    for (uint32_t i = 0; i < o_.nodes; ++i) {
      const NodeView v = View(i);
      s += "  node " + std::to_string(i + 1) + ": ";
      if (v.regulars.empty()) {
        s += "no configuration\n";
        continue;
      }
      s += v.regulars.back().id + " [";
      for (size_t k = 0; k < v.regulars.back().members.size(); ++k) {
        s += (k ? "," : "") + std::to_string(v.regulars.back().members[k]);
      }
      s += "]\n";
    }
    return s;
  }

 private:
  const FailoverOptions& o_;
  std::string dir_;
  uint64_t rate_;
  std::string key_;
  std::string peers_;
  std::vector<std::unique_ptr<Process>> procs_;
  std::vector<int> starts_;
};

std::vector<uint32_t> Range(uint32_t n, uint32_t without = 0) {
  std::vector<uint32_t> v;
  for (uint32_t i = 1; i <= n; ++i) {
    if (i != without) v.push_back(i);
  }
  return v;
}
std::vector<uint32_t> Indexes(const std::vector<uint32_t>& ids) {
  std::vector<uint32_t> v;
  for (uint32_t id : ids) v.push_back(id - 1);
  return v;
}

}  // namespace

int RunFailoverBench(int argc, char** argv) {
  const std::optional<FailoverOptions> parsed = ParseFailoverOptions(argc, argv);
  if (!parsed) return 2;
  const FailoverOptions& o = *parsed;
  char tmpl[] = "/tmp/totem-bench-failover-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    std::perror("totem-bench: mkdtemp");
    return 1;
  }
  const std::string dir = tmpl;
  int failures = 0;
  std::printf(
      "failover: %u totem-node processes on 127.0.0.1, %llu msgs/s each (%llu B), "
      "token_timeout_us=%s, load average %.2f, work dir %s\n",
      o.nodes, static_cast<unsigned long long>(o.rate), static_cast<unsigned long long>(o.size),
      o.token_timeout_us ? std::to_string(o.token_timeout_us).c_str() : "default", LoadAverage1(),
      dir.c_str());
  std::fflush(stdout);

  std::vector<double> installed_ms, resumed_ms, rejoin_ms;
  {
    ProcessRing ring(o, dir, "trials", o.rate);
    ring.StartAll();
    std::optional<ProcessRing::Agreed> full =
        ring.WaitAgreed(Indexes(Range(o.nodes)), Range(o.nodes), 0, std::chrono::seconds(30));
    if (!full) {
      std::fprintf(stderr, "totem-bench: the %u nodes did not form one ring in 30 s:\n%s", o.nodes,
                   ring.Describe().c_str());
      return 1;
    }
    std::printf("ring formed: %s\n", full->id.c_str());
    // Victims alternate from both ends: the highest id, the representative
    // (lowest id), the next highest, the next lowest, ...
    std::vector<uint32_t> victims;
    for (uint32_t lo = 1, hi = o.nodes; lo <= hi;) {
      victims.push_back(hi--);
      if (lo <= hi) victims.push_back(lo++);
    }
    std::printf("%-6s %-7s %-14s %-12s %-10s %-12s %s\n", "trial", "victim", "installed_ms",
                "resumed_ms", "extra_cfg", "rejoin_ms", "new configuration");
    for (uint32_t t = 0; t < o.trials; ++t) {
      const uint32_t victim = victims[t % victims.size()];
      // Let traffic flow in the current configuration first.
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      const uint64_t kill_us = MonotonicUs();
      ring.Kill(victim - 1);
      const std::vector<uint32_t> survivors = Range(o.nodes, victim);
      std::optional<ProcessRing::Agreed> after =
          ring.WaitAgreed(Indexes(survivors), survivors, kill_us, std::chrono::seconds(30));
      if (!after) {
        std::fprintf(stderr, "totem-bench: trial %u: survivors did not agree within 30 s:\n%s",
                     t + 1, ring.Describe().c_str());
        ++failures;
        break;
      }
      const double inst = static_cast<double>(after->installed_us - kill_us) / 1000.0;
      const double res = static_cast<double>(after->resumed_us - kill_us) / 1000.0;
      installed_ms.push_back(inst);
      resumed_ms.push_back(res);

      const uint64_t restart_us = MonotonicUs();
      ring.Start(victim - 1);
      std::optional<ProcessRing::Agreed> back = ring.WaitAgreed(
          Indexes(Range(o.nodes)), Range(o.nodes), restart_us, std::chrono::seconds(30));
      if (!back) {
        std::fprintf(stderr, "totem-bench: trial %u: node %u did not rejoin within 30 s:\n%s",
                     t + 1, victim, ring.Describe().c_str());
        ++failures;
        break;
      }
      const double rejoin = static_cast<double>(back->resumed_us - restart_us) / 1000.0;
      rejoin_ms.push_back(rejoin);
      std::printf("%-6u %-7u %-14.1f %-12.1f %-10llu %-12.1f %s\n", t + 1, victim, inst, res,
                  static_cast<unsigned long long>(after->extra_regulars), rejoin,
                  after->id.c_str());
      std::fflush(stdout);
    }
    const int bad = ring.StopAll();
    if (bad != 0) {
      std::fprintf(stderr, "totem-bench: %d nodes exited with an error (order violation?)\n", bad);
      ++failures;
    }
  }
  if (!installed_ms.empty()) {
    const Stats i = Summarize(installed_ms);
    const Stats r = Summarize(resumed_ms);
    const Stats j = Summarize(rejoin_ms);
    std::printf(
        "failover kill -9 -> new regular configuration at every survivor: "
        "min %.1f / median %.1f / max %.1f ms (%zu trials)\n",
        i.min, i.median, i.max, installed_ms.size());
    std::printf(
        "failover kill -9 -> ordered traffic resumed at every survivor:   "
        "min %.1f / median %.1f / max %.1f ms\n",
        r.min, r.median, r.max);
    std::printf(
        "restart -> rejoined (all %u in one ring, delivering; includes process start): "
        "min %.1f / median %.1f / max %.1f ms\n",
        o.nodes, j.min, j.median, j.max);
  }
  std::printf(
      "reference: corosync 3.1.7 on this machine ~215 ms with token=100 ms (idle ring), "
      "~7.8 s with its defaults\n");
  std::fflush(stdout);

  if (o.load_seconds > 0) {
    ProcessRing ring(o, dir, "load", 0);
    ring.StartAll();
    std::optional<ProcessRing::Agreed> full =
        ring.WaitAgreed(Indexes(Range(o.nodes)), Range(o.nodes), 0, std::chrono::seconds(30));
    if (!full) {
      std::fprintf(stderr, "totem-bench: load run: the ring did not form in 30 s:\n%s",
                   ring.Describe().c_str());
      return 1;
    }
    const uint64_t formed_us = MonotonicUs();
    std::this_thread::sleep_for(std::chrono::duration<double>(o.load_seconds));
    uint64_t spurious_regular = 0;
    uint64_t spurious_transitional = 0;
    for (uint32_t i = 0; i < o.nodes; ++i) {
      const NodeView v = ring.View(i);
      spurious_regular += static_cast<uint64_t>(
          std::count_if(v.regulars.begin(), v.regulars.end(),
                        [&](const RegularLine& r) { return r.t_us > full->installed_us; }));
      spurious_transitional += v.transitional_count_after(full->installed_us);
    }
    const double secs = static_cast<double>(MonotonicUs() - formed_us) / 1e6;
    // Throughput: each node's once-a-second "node=<id> ... msgs/s=<r>" lines,
    // without the first (it includes the ring's formation), averaged.
    double rate_sum = 0;
    int rate_lines = 0;
    for (uint32_t i = 0; i < o.nodes; ++i) {
      std::istringstream in(ReadWholeFile(ring.OutPath(i)));
      std::string line;
      bool first = true;
      while (std::getline(in, line)) {
        if (line.rfind("node=", 0) != 0) continue;
        if (first) {
          first = false;
          continue;
        }
        rate_sum += std::strtod(Field(line, "msgs/s").c_str(), nullptr);
        ++rate_lines;
      }
    }
    const int bad = ring.StopAll();
    std::printf(
        "saturating load: %u nodes all sending %llu B as fast as their queues allow for "
        "%.1f s: %.0f msgs/s delivered per node; configuration changes after the ring "
        "formed: %llu regular, %llu transitional (spurious: nobody failed)\n",
        o.nodes, static_cast<unsigned long long>(o.size), secs,
        rate_lines > 0 ? rate_sum / rate_lines : 0.0,
        static_cast<unsigned long long>(spurious_regular),
        static_cast<unsigned long long>(spurious_transitional));
    if (bad != 0) {
      std::fprintf(stderr, "totem-bench: load run: %d nodes exited with an error\n", bad);
      ++failures;
    }
    if (spurious_regular != 0) ++failures;
  }
  if (!o.keep) {
    const std::string cmd = "rm -rf '" + dir + "'";
    [[maybe_unused]] const int rc = std::system(cmd.c_str());
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace totem::bench

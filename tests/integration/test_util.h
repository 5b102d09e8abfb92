// Helpers shared by the integration tests: free loopback ports, waiting on
// conditions with deadlines, temporary directories, and child processes
// (fork + exec, output captured to a file, killed if still running when the
// handle goes away).
#ifndef TOTEMKV_TESTS_INTEGRATION_TEST_UTIL_H_
#define TOTEMKV_TESTS_INTEGRATION_TEST_UTIL_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace totem::testing {

// A UDP port on 127.0.0.1 that was free a moment ago (the kernel picked it).
// Good enough on a test machine: the kernel cycles through the ephemeral
// range before reusing a port.
inline uint16_t FreeUdpPort() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  uint16_t port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// Distinct free ports.
inline std::vector<uint16_t> FreeUdpPorts(size_t n) {
  std::vector<uint16_t> ports;
  while (ports.size() < n) {
    const uint16_t p = FreeUdpPort();
    if (p == 0) break;
    bool dup = false;
    for (uint16_t q : ports) dup |= q == p;
    if (!dup) ports.push_back(p);
  }
  return ports;
}

// Polls `condition` until it holds or `timeout` passes. For state that is
// only observable by polling (counters, child processes).
inline bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// A temporary directory, removed (with its files) at scope exit.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/totemkv-it-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  // TOTEMKV_KEEP_TEST_DIR=1 keeps it (and prints where) for debugging.
  ~TempDir() {
    const char* keep = std::getenv("TOTEMKV_KEEP_TEST_DIR");
    if (keep != nullptr && std::string(keep) == "1") {
      std::fprintf(stderr, "kept test directory %s\n", path_.c_str());
      return;
    }
    if (!path_.empty()) {
      const std::string cmd = "rm -rf '" + path_ + "'";
      [[maybe_unused]] int rc = std::system(cmd.c_str());
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The elements `a` and `b` have in common, each in its own order: equal
// results mean the two sequences order their shared elements alike.
inline std::pair<std::vector<std::string>, std::vector<std::string>> SharedInOrder(
    const std::vector<std::string>& a, const std::vector<std::string>& b) {
  const std::set<std::string> sa(a.begin(), a.end());
  const std::set<std::string> sb(b.begin(), b.end());
  std::pair<std::vector<std::string>, std::vector<std::string>> out;
  for (const std::string& l : a) {
    if (sb.count(l) != 0) out.first.push_back(l);
  }
  for (const std::string& l : b) {
    if (sa.count(l) != 0) out.second.push_back(l);
  }
  return out;
}

// The complete lines of a log file (a process killed with SIGKILL may leave
// half a line at the end, which is left out), up to and including a line
// equal to `stop_after` if one is given.
inline std::vector<std::string> CompleteLines(const std::string& path,
                                              const std::string& stop_after = "") {
  const std::string text = ReadFile(path);
  std::vector<std::string> lines;
  size_t begin = 0;
  for (size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', begin)) {
    lines.push_back(text.substr(begin, nl - begin));
    begin = nl + 1;
    if (!stop_after.empty() && lines.back() == stop_after) break;
  }
  return lines;
}

// A child process whose stdout and stderr go to `log_path`.
class Child {
 public:
  Child() = default;
  Child(const std::vector<std::string>& argv, const std::string& log_path) : log_(log_path) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::close(fd);
      }
      const int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
      ::execvp(args[0], args.data());
      std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
      ::_exit(127);
    }
  }
  ~Child() { Kill(); }
  Child(Child&& o) noexcept : pid_(o.pid_), status_(o.status_), log_(std::move(o.log_)) {
    o.pid_ = -1;
  }
  Child& operator=(Child&&) = delete;
  Child(const Child&) = delete;

  bool started() const { return pid_ > 0 || status_.has_value(); }

  // Waits up to `timeout` for the child to exit; returns its exit code, or
  // nullopt if it is still running (or died from a signal: then -signal).
  std::optional<int> Wait(std::chrono::milliseconds timeout) {
    WaitFor([this] { return Reap(); }, timeout);
    return status_;
  }

  void Kill() {
    if (pid_ > 0 && !Reap()) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
      status_ = -SIGKILL;
      pid_ = -1;
    }
  }

  // Sends `sig` to the child if it is still running.
  void Signal(int sig) {
    if (pid_ > 0 && !Reap()) ::kill(pid_, sig);
  }

  pid_t pid() const { return pid_; }

  std::string Output() const { return ReadFile(log_); }

 private:
  bool Reap() {
    if (status_.has_value()) return true;
    if (pid_ <= 0) return false;
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r != pid_) return false;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    pid_ = -1;
    return true;
  }

  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string log_;
};

// Runs a command to completion (output to `log_path`); returns its exit code.
inline int RunCommand(const std::vector<std::string>& argv, const std::string& log_path,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  Child c(argv, log_path);
  std::optional<int> rc = c.Wait(timeout);
  return rc.value_or(-1);
}

// The value of `key=` in the first line starting with `prefix`, or "".
inline std::string FieldOfLine(const std::string& text, const std::string& prefix,
                               const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    const size_t at = line.find(" " + key + "=");
    if (at == std::string::npos) return "";
    const size_t begin = at + key.size() + 2;
    return line.substr(begin, line.find(' ', begin) - begin);
  }
  return "";
}

}  // namespace totem::testing

#endif  // TOTEMKV_TESTS_INTEGRATION_TEST_UTIL_H_

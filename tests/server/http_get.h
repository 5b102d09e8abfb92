// A tiny blocking HTTP/1.0 GET against 127.0.0.1 for tests that scrape
// totemkvd's metrics and health endpoints (ops_test, multi_ring_metrics_test).
#ifndef TOTEMKV_TESTS_SERVER_HTTP_GET_H_
#define TOTEMKV_TESTS_SERVER_HTTP_GET_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

namespace totemkv::testing {

// GET http://127.0.0.1:port/path (HTTP/1.0, so the server closes after
// answering). {status code (0: no answer), body}.
inline std::pair<int, std::string> HttpGet(uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {0, ""};
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[16384];
      ssize_t n = 0;
      while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, n);
    }
  }
  ::close(fd);
  const size_t sp = response.find(' ');
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || sp == std::string::npos || body == std::string::npos) {
    return {0, response};
  }
  return {std::atoi(response.c_str() + sp + 1), response.substr(body + 4)};
}

// The body of a 200 answer, "" otherwise.
inline std::string HttpGetBody(uint16_t port, const std::string& path) {
  auto [status, body] = HttpGet(port, path);
  return status == 200 ? body : "";
}

}  // namespace totemkv::testing

#endif  // TOTEMKV_TESTS_SERVER_HTTP_GET_H_

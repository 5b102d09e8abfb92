// Metrics for operators in the Prometheus text exposition format (0.0.4),
// served over HTTP at /metrics by --listen-metrics-urls:
//  - GrpcMetrics: a gRPC server interceptor counting every call by method
//    and status code, with a latency histogram per method (for streams:
//    the stream's lifetime, as go-grpc-prometheus measures it).
//  - RenderMetrics: the ring (state, members, ring seq, token rotation),
//    every totem::Counters field (drops as one family by reason), the
//    replication engine (role, primary), the store (revision, applied
//    index, Replicator::StoreCounters), the apply latency histogram, the
//    multiple-ring layer with several rings (totemkv_mring_events_total by
//    counter, queued, local and reachable rings,
//    totemkv_global_configurations_total), and the gRPC metrics. Every
//    family has HELP and TYPE lines.
//  - MetricsServer: a small Boost.Beast HTTP/1.1 server on its own thread:
//    GET /metrics answers the rendered text, GET /health "ok"; anything
//    else 404 (405 for a method other than GET/HEAD). Each connection has
//    a 10 s deadline, so a client that stalls cannot hold it.
#ifndef TOTEMKV_SERVER_METRICS_H_
#define TOTEMKV_SERVER_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "histogram.h"
#include "replicator.h"
#include "totem/status.h"

namespace totemkv::server {

// Thread-safe; lives as long as the gRPC server that uses its interceptor.
class GrpcMetrics {
 public:
  static constexpr size_t kCodes = 17;  // grpc::StatusCode OK..UNAUTHENTICATED
  struct Method {
    std::array<std::atomic<uint64_t>, kCodes> by_code{};
    LatencyHistogram latency;
  };

  // Counts one finished call of `method` (e.g. "/etcdserverpb.KV/Put").
  void Record(const std::string& method, int code, std::chrono::nanoseconds latency);
  // Appends the families grpc_server_handled_total and
  // grpc_server_handling_seconds (go-grpc-prometheus's names).
  void Render(std::string* out) const;

  // For ServerBuilder::experimental().SetInterceptorCreators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewInterceptorFactory();

 private:
  mutable std::mutex mu_;  // guards the map; entries are never removed
  std::map<std::string, std::unique_ptr<Method>> methods_;
};

// The whole exposition text. `grpc` may be null.
std::string RenderMetrics(const Replicator& replicator, const GrpcMetrics* grpc);

class MetricsServer {
 public:
  // Listens on every "HOST:PORT" of `addresses` (HOST numeric or a name
  // that resolves). `render` runs on the server thread per scrape. Errors:
  // INVALID_ARGUMENT for an unresolvable address, IO_ERROR when a port
  // cannot be bound (naming it).
  static totem::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::vector<std::string>& addresses, std::function<std::string()> render);
  ~MetricsServer();  // Stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The bound ports, in the order of `addresses`.
  const std::vector<uint16_t>& ports() const;
  // Closes the listeners and open connections and joins the thread.
  void Stop();

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_METRICS_H_

// The Prometheus endpoint (see metrics.h): the gRPC interceptor, the text
// rendering of the node's state and counters, and the Beast HTTP server.
// Metric names follow Prometheus conventions: a `totemkv_` prefix, base
// units (seconds, bytes), `_total` on counters; the gRPC families use
// go-grpc-prometheus's names so etcd dashboards find them.
#include "metrics.h"

#include <grpcpp/grpcpp.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cinttypes>
#include <cstdio>
#include <string_view>
#include <thread>

namespace totemkv::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

const char* const kCodeNames[GrpcMetrics::kCodes] = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

// Escapes a label value (text format: \\, \", \n).
std::string Label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string Double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

void Family(std::string* out, const std::string& name, const char* type, const std::string& help) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void Sample(std::string* out, const std::string& name, const std::string& labels, uint64_t v) {
  *out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(v) + "\n";
}

void SampleDouble(std::string* out, const std::string& name, const std::string& labels, double v) {
  *out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + Double(v) + "\n";
}

// The samples of one histogram (the family lines are the caller's).
void HistogramSamples(std::string* out, const std::string& name, const std::string& labels,
                      const LatencyHistogram::Snapshot& h) {
  const std::string sep = labels.empty() ? "" : labels + ",";
  for (size_t i = 0; i < h.bounds_seconds.size(); ++i) {
    Sample(out, name + "_bucket", sep + "le=\"" + Double(h.bounds_seconds[i]) + "\"",
           h.cumulative[i]);
  }
  Sample(out, name + "_bucket", sep + "le=\"+Inf\"", h.count);
  SampleDouble(out, name + "_sum", labels, h.sum_seconds);
  Sample(out, name + "_count", labels, h.count);
}

class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(GrpcMetrics* metrics, const char* method)
      : metrics_(metrics),
        method_(method != nullptr ? method : "unknown"),
        start_(std::chrono::steady_clock::now()) {}
  ~MetricsInterceptor() override {
    // A call that ended without sending a status was cancelled.
    if (!recorded_) {
      metrics_->Record(method_, grpc::StatusCode::CANCELLED,
                       std::chrono::steady_clock::now() - start_);
    }
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      recorded_ = true;
      metrics_->Record(method_, methods->GetSendStatus().error_code(),
                       std::chrono::steady_clock::now() - start_);
    }
    methods->Proceed();
  }

 private:
  GrpcMetrics* metrics_;
  std::string method_;
  std::chrono::steady_clock::time_point start_;
  bool recorded_ = false;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(GrpcMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(metrics_, info->method());
  }

 private:
  GrpcMetrics* metrics_;
};

}  // namespace

void GrpcMetrics::Record(const std::string& method, int code, std::chrono::nanoseconds latency) {
  Method* m = nullptr;
  {
    std::lock_guard<std::mutex> l(mu_);
    std::unique_ptr<Method>& slot = methods_[method];
    if (slot == nullptr) slot = std::make_unique<Method>();
    m = slot.get();
  }
  const size_t c = code >= 0 && static_cast<size_t>(code) < kCodes ? static_cast<size_t>(code) : 2;
  m->by_code[c].fetch_add(1, std::memory_order_relaxed);
  m->latency.Observe(latency);
}

void GrpcMetrics::Render(std::string* out) const {
  std::vector<std::pair<std::string, const Method*>> methods;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [name, m] : methods_) methods.emplace_back(name, m.get());
  }
  // "/etcdserverpb.KV/Put" -> grpc_service="etcdserverpb.KV", grpc_method="Put".
  const auto labels = [](const std::string& full) {
    const size_t slash = full.rfind('/');
    const std::string service = slash == std::string::npos ? "" : full.substr(1, slash - 1);
    const std::string method = slash == std::string::npos ? full : full.substr(slash + 1);
    return "grpc_service=\"" + Label(service) + "\",grpc_method=\"" + Label(method) + "\"";
  };
  Family(out, "grpc_server_handled_total", "counter",
         "gRPC calls finished on the client port, by method and status code.");
  for (const auto& [name, m] : methods) {
    for (size_t c = 0; c < kCodes; ++c) {
      const uint64_t v = m->by_code[c].load(std::memory_order_relaxed);
      if (v > 0)
        Sample(out, "grpc_server_handled_total",
               labels(name) + ",grpc_code=\"" + kCodeNames[c] + "\"", v);
    }
  }
  Family(out, "grpc_server_handling_seconds", "histogram",
         "Time from receiving a gRPC call to sending its status (streams: their lifetime).");
  for (const auto& [name, m] : methods) {
    HistogramSamples(out, "grpc_server_handling_seconds", labels(name), m->latency.Read());
  }
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
GrpcMetrics::NewInterceptorFactory() {
  return std::make_unique<MetricsInterceptorFactory>(this);
}

std::string RenderMetrics(const Replicator& replicator, const GrpcMetrics* grpc) {
  std::string out;
  const totem::ConfigurationView view = replicator.Configuration();
  const totem::RingStatus ring = replicator.GetRingStatus();
  const totem::Counters counters = replicator.TotemCounters();
  const Replicator::ReplicationStatus repl = replicator.Replication();

  Family(&out, "totemkv_ring_state", "gauge", "The Totem membership state: 1 for the current one.");
  for (totem::RingState s : {totem::RingState::kOperational, totem::RingState::kGather,
                             totem::RingState::kCommit, totem::RingState::kRecovery}) {
    Sample(&out, "totemkv_ring_state", std::string("state=\"") + totem::RingStateName(s) + "\"",
           ring.state == s ? 1 : 0);
  }
  Family(&out, "totemkv_ring_members", "gauge", "Members of the last regular configuration.");
  Sample(&out, "totemkv_ring_members", "", view.regular.members.size());
  Family(&out, "totemkv_ring_seq", "gauge",
         "Ring sequence number of the last regular configuration.");
  Sample(&out, "totemkv_ring_seq", "", view.regular.id.seq);
  Family(&out, "totemkv_ring_representative", "gauge", "Node id of the ring's representative.");
  Sample(&out, "totemkv_ring_representative", "", view.regular.id.rep);
  Family(&out, "totemkv_ring_in_transition", "gauge",
         "1 while a transitional configuration is delivered and the next regular one is coming.");
  Sample(&out, "totemkv_ring_in_transition", "", view.in_transition ? 1 : 0);
  Family(&out, "totemkv_configurations_total", "counter",
         "Configuration changes delivered since start, by kind.");
  Sample(&out, "totemkv_configurations_total", "kind=\"regular\"", view.regular_installs);
  Sample(&out, "totemkv_configurations_total", "kind=\"transitional\"", view.transitional_installs);
  Family(&out, "totemkv_token_rotation_seconds", "gauge",
         "Mean time between token arrivals over the last rotations (0: not measured yet).");
  SampleDouble(&out, "totemkv_token_rotation_seconds", "",
               static_cast<double>(ring.mean_token_rotation_us) / 1e6);

  // Every Totem counter; the drop_* ones as one family by reason.
  Family(&out, "totemkv_totem_dropped_frames_total", "counter",
         "Frames and tokens received and dropped, by reason (totem/counters.h).");
  constexpr std::string_view kDrop = "drop_";
  for (const auto& [name, value] : counters.Fields()) {
    if (name.substr(0, kDrop.size()) == kDrop) {
      Sample(&out, "totemkv_totem_dropped_frames_total",
             "reason=\"" + std::string(name.substr(kDrop.size())) + "\"", value);
    }
  }
  for (const auto& [name, value] : counters.Fields()) {
    if (name.substr(0, kDrop.size()) == kDrop) continue;
    const std::string metric = "totemkv_totem_" + std::string(name) + "_total";
    Family(&out, metric, "counter", "Totem counter " + std::string(name) + " (totem/counters.h).");
    Sample(&out, metric, "", value);
  }

  Family(&out, "totemkv_replication_role", "gauge",
         "The replication engine's role: 1 for the current one.");
  for (::kvstore::repl::Role r :
       {::kvstore::repl::Role::kStarting, ::kvstore::repl::Role::kExchanging,
        ::kvstore::repl::Role::kPrimary, ::kvstore::repl::Role::kNonPrimary,
        ::kvstore::repl::Role::kTransition, ::kvstore::repl::Role::kFailed}) {
    Sample(&out, "totemkv_replication_role",
           std::string("role=\"") + ::kvstore::repl::RoleName(r) + "\"", repl.role == r ? 1 : 0);
  }
  Family(&out, "totemkv_primary", "gauge",
         "1 if this member is in the installed primary component (serves writes).");
  Sample(&out, "totemkv_primary", "", repl.role == ::kvstore::repl::Role::kPrimary ? 1 : 0);
  Family(&out, "totemkv_replication_commit_index", "gauge",
         "Highest op index acknowledged by a majority of the configured members.");
  Sample(&out, "totemkv_replication_commit_index", "", repl.commit_index);
  Family(&out, "totemkv_configured_members", "gauge", "Configured cluster members.");
  Sample(&out, "totemkv_configured_members", "", repl.configured.size());

  Family(&out, "totemkv_store_revision", "gauge", "The store's current revision.");
  Sample(&out, "totemkv_store_revision", "",
         static_cast<uint64_t>(replicator.store().CurrentRevision()));
  Family(&out, "totemkv_applied_index", "gauge",
         "Index of the last applied op in the global order.");
  Sample(&out, "totemkv_applied_index", "", replicator.applied_seq());
  // Replicator::StoreCounters: "*_current" are gauges, the rest counters.
  constexpr std::string_view kCurrent = "_current";
  for (const auto& [name, value] : replicator.StoreCounters()) {
    if (name == "revision_current") continue;  // totemkv_store_revision above
    const bool gauge = name.size() > kCurrent.size() &&
                       name.compare(name.size() - kCurrent.size(), kCurrent.size(), kCurrent) == 0;
    const std::string metric =
        "totemkv_store_" +
        (gauge ? name.substr(0, name.size() - kCurrent.size()) : name + "_total");
    Family(&out, metric, gauge ? "gauge" : "counter",
           "Replicator store counter " + name + " (admin GetCounters).");
    Sample(&out, metric, "", value);
  }
  Family(&out, "totemkv_apply_latency_seconds", "histogram",
         "Time from Totem delivery to the durable apply of the batch holding it.");
  HistogramSamples(&out, "totemkv_apply_latency_seconds", "", replicator.apply_latency().Read());

  // Multiple rings only: the layer's counters (Ordering::LayerCounters,
  // "mring_*") as one family by counter, the "*_current" ones and the
  // reachable rings as gauges, the global configurations as their own counter.
  if (const Ordering::GlobalView global = replicator.GlobalView(); global.multi_ring) {
    const std::map<std::string, uint64_t> layer = replicator.MultiRingCounters();
    constexpr std::string_view kMring = "mring_";
    Family(&out, "totemkv_mring_events_total", "counter",
           "Multiple-ring layer counters by name (totem/core/multi_ring.h MultiRingCounters).");
    for (const auto& [name, value] : layer) {
      if (name.ends_with(kCurrent) || name == "mring_configurations_delivered") continue;
      Sample(&out, "totemkv_mring_events_total",
             "counter=\"" + name.substr(name.rfind(kMring, 0) == 0 ? kMring.size() : 0) + "\"",
             value);
    }
    Family(&out, "totemkv_mring_queued", "gauge",
           "Messages accepted by the multiple-ring layer and waiting for delivery.");
    Sample(&out, "totemkv_mring_queued", "",
           layer.count("mring_queued_current") ? layer.at("mring_queued_current") : 0);
    Family(&out, "totemkv_mring_local_rings", "gauge", "Rings this member is on (2+: a gateway).");
    Sample(&out, "totemkv_mring_local_rings", "", global.local_rings.size());
    Family(&out, "totemkv_mring_reachable_rings", "gauge",
           "Rings this member waits for (reachable over live gateways), its own included.");
    Sample(&out, "totemkv_mring_reachable_rings", "", global.reachable_rings.size());
    Family(&out, "totemkv_global_configurations_total", "counter",
           "Global configurations (across rings) delivered since start.");
    Sample(&out, "totemkv_global_configurations_total", "",
           layer.count("mring_configurations_delivered")
               ? layer.at("mring_configurations_delivered")
               : 0);
  }

  if (grpc != nullptr) grpc->Render(&out);
  return out;
}

// ---------------------------------------------------------------- the server

namespace {

constexpr auto kConnectionDeadline = std::chrono::seconds(10);

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const std::function<std::string()>* render)
      : stream_(std::move(socket)), render_(render) {}

  void Read() {
    req_ = http::request<http::string_body>();
    stream_.expires_after(kConnectionDeadline);
    http::async_read(stream_, buffer_, req_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (!ec) self->Answer();
                     });
  }

 private:
  void Answer() {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(req_.version());
    res->keep_alive(req_.keep_alive());
    res->set(http::field::server, "totemkvd");
    const std::string_view target(req_.target().data(), req_.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    if (req_.method() != http::verb::get && req_.method() != http::verb::head) {
      res->result(http::status::method_not_allowed);
      res->set(http::field::content_type, "text/plain");
      res->body() = "only GET\n";
    } else if (path == "/metrics") {
      res->result(http::status::ok);
      res->set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res->body() = (*render_)();
    } else if (path == "/health") {
      res->result(http::status::ok);
      res->set(http::field::content_type, "text/plain");
      res->body() = "ok\n";
    } else {
      res->result(http::status::not_found);
      res->set(http::field::content_type, "text/plain");
      res->body() = "not found: try /metrics\n";
    }
    res->prepare_payload();
    if (req_.method() == http::verb::head) res->body().clear();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec) return;
                        if (res->keep_alive()) {
                          self->Read();
                        } else {
                          beast::error_code ignored;
                          self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                        }
                      });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  const std::function<std::string()>* render_;
};

}  // namespace

struct MetricsServer::Impl {
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<uint16_t> ports;
  std::function<std::string()> render;
  std::thread thread;
  bool stopped = false;

  void Accept(tcp::acceptor* acceptor) {
    acceptor->async_accept([this, acceptor](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) std::make_shared<Session>(std::move(socket), &render)->Read();
      Accept(acceptor);
    });
  }
};

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

totem::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::vector<std::string>& addresses, std::function<std::string()> render) {
  auto impl = std::make_unique<Impl>();
  impl->render = std::move(render);
  for (const std::string& address : addresses) {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) {
      return totem::InvalidArgument("metrics address '" + address + "': want HOST:PORT");
    }
    std::string host = address.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    beast::error_code ec;
    tcp::resolver resolver(impl->io);
    const auto results =
        resolver.resolve(host, address.substr(colon + 1), tcp::resolver::numeric_service, ec);
    if (ec || results.empty()) {
      return totem::InvalidArgument("metrics address '" + address +
                                    "': " + (ec ? ec.message() : "no address"));
    }
    const tcp::endpoint endpoint = results.begin()->endpoint();
    auto acceptor = std::make_unique<tcp::acceptor>(impl->io);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return totem::IoError("cannot listen for metrics on " + address + ": " + ec.message());
    }
    impl->ports.push_back(acceptor->local_endpoint().port());
    impl->acceptors.push_back(std::move(acceptor));
  }
  for (auto& a : impl->acceptors) impl->Accept(a.get());
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::~MetricsServer() { Stop(); }

const std::vector<uint16_t>& MetricsServer::ports() const { return impl_->ports; }

void MetricsServer::Stop() {
  if (impl_ == nullptr || impl_->stopped) return;
  impl_->stopped = true;
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace totemkv::server

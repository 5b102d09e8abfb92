// totemkvd: the totemkv server. Parses the flags (server_config.h), opens
// the store and joins the Totem ring (Replicator), serves the etcd v3 API
// over gRPC (plaintext, or TLS on https:// URLs: client_tls.h), serves
// Prometheus metrics with --listen-metrics-urls (metrics.h), and runs
// until SIGINT or SIGTERM. With no flags: a single-node cluster with its
// data in ./default.totemkv, listening on 127.0.0.1:2379, with a cluster
// key generated in the data dir.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "admin_service.h"
#include "client_tls.h"
#include "etcd_services.h"
#include "lease_manager.h"
#include "lease_service.h"
#include "log.h"
#include "metrics.h"
#include "replicator.h"
#include "server_config.h"
#include "snapshot_file.h"
#include "watch_hub.h"
#include "watch_service.h"
#include "totem/node.h"

namespace {

using totemkv::server::Event;
using totemkv::server::LogError;
using totemkv::server::LogInfo;

int Run(int argc, char** argv) {
  totemkv::server::ConfigSources sources;
  sources.args.assign(argv + 1, argv + argc);
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) sources.env.emplace_back(*e);
  totem::StatusOr<totemkv::server::ServerConfig> parsed = totemkv::server::ParseConfig(sources);
  if (!parsed.ok()) {
    if (parsed.status().message() == "help") {
      std::fputs(totemkv::server::Usage(), stdout);
      return 0;
    }
    LogError(Event::kConfigError,
             {{"error", parsed.status().message()}, {"help", "totemkvd --help"}});
    return 2;
  }
  const totemkv::server::ServerConfig& config = *parsed;
  totemkv::server::ConfigureLog(config.log_format, config.log_level);

  if (!config.restore_snapshot.empty()) {
    totem::StatusOr<totemkv::server::RestoreResult> restored =
        totemkv::server::RestoreSnapshot(config.restore_snapshot, config.data_dir);
    if (!restored.ok()) {
      LogError(Event::kStartupFailed,
               {{"step", "restore_snapshot"}, {"error", restored.status().message()}});
      return 1;
    }
    std::printf(
        "restored %s into %s/db: revision %lld, position %llu, %llu chunks, %llu bytes "
        "(taken from member %llu)\n",
        config.restore_snapshot.c_str(), config.data_dir.c_str(),
        static_cast<long long>(restored->revision),
        static_cast<unsigned long long>(restored->green),
        static_cast<unsigned long long>(restored->chunks),
        static_cast<unsigned long long>(restored->file_bytes),
        static_cast<unsigned long long>(restored->header.member_id));
    return 0;
  }

  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    LogError(Event::kStartupFailed,
             {{"step", "create_data_dir"}, {"path", config.data_dir}, {"error", ec.message()}});
    return 1;
  }
  std::string key_file = config.key_file;
  if (key_file.empty()) {
    key_file = config.data_dir + "/cluster.key";
    if (!std::filesystem::exists(key_file)) {
      if (totem::Status s = totem::WriteKeyFile(key_file); !s.ok()) {
        LogError(Event::kStartupFailed,
                 {{"step", "write_key_file"}, {"path", key_file}, {"error", s.ToString()}});
        return 1;
      }
      LogInfo(Event::kKeyGenerated, {{"path", key_file}});
    }
  }
  totem::StatusOr<std::string> key = totem::ReadKeyFile(key_file);
  if (!key.ok()) {
    LogError(Event::kConfigError,
             {{"step", "read_key_file"}, {"path", key_file}, {"error", key.status().ToString()}});
    return 1;
  }

  // TLS files are read (and checked) before anything starts.
  totem::StatusOr<std::vector<std::shared_ptr<grpc::ServerCredentials>>> credentials =
      totemkv::server::ListenCredentials(config);
  if (!credentials.ok()) {
    LogError(Event::kConfigError, {{"step", "tls"}, {"error", credentials.status().ToString()}});
    return 1;
  }
  if (!config.client_cert_file.empty()) {
    LogInfo(Event::kTlsLoaded, {{"cert_file", config.client_cert_file},
                                {"trusted_ca_file", config.client_trusted_ca_file},
                                {"client_cert_auth", config.client_cert_auth}});
  }

  // Block the stop signals before any thread starts, so every thread
  // inherits the mask and sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  totem::StatusOr<std::unique_ptr<totemkv::server::Replicator>> replicator =
      totemkv::server::Replicator::Start(config, *key);
  if (!replicator.ok()) {
    LogError(Event::kStartupFailed,
             {{"step", "replicator"}, {"error", replicator.status().ToString()}});
    return 1;
  }
  totemkv::server::LeaseManager leases(replicator->get(), totemkv::server::LeaseExpiryOptions{});
  if (totem::Status s = leases.Start(); !s.ok()) {
    LogError(Event::kStartupFailed, {{"step", "leases"}, {"error", s.ToString()}});
    (*replicator)->Stop();
    return 1;
  }
  totemkv::server::ServerContext ctx(config, replicator->get());
  totemkv::server::KvService kv(&ctx);
  totemkv::server::MaintenanceService maintenance(&ctx);
  totemkv::server::ClusterService cluster(&ctx);
  totemkv::server::AdminService admin(&ctx);
  totemkv::server::LeaseService lease(&ctx, &leases);
  // Watchers are fed by the store's event callback from here on.
  totemkv::server::WatchHubOptions watch_options;
  watch_options.max_watches = config.max_watches;
  watch_options.progress_notify_interval =
      std::chrono::milliseconds(config.watch_progress_notify_interval_ms);
  totemkv::server::WatchHub watch_hub((*replicator)->store(), watch_options);
  (*replicator)->SetStoreEventCallback(
      [&watch_hub](const std::vector<kvstore::Event>& events, int64_t revision) {
        watch_hub.OnEvents(events, revision);
      });
  totemkv::server::WatchService watch(&ctx, &watch_hub);
  // After a snapshot replaced this member's state: watchers catch up from
  // the new history, lease timers are rebuilt from the new leases.
  (*replicator)->AddResetObserver([&watch_hub, &leases, r = replicator->get()] {
    watch_hub.Resync(r->store().CurrentRevision());
    const totem::Status reloaded = leases.ReloadFromStore();
    if (!reloaded.ok()) {
      LogError(Event::kLeaseReloadFailed, {{"error", reloaded.ToString()}});
    }
  });

  grpc::ServerBuilder builder;
  std::vector<int> ports(config.listen_addresses.size(), 0);
  for (size_t i = 0; i < config.listen_addresses.size(); ++i) {
    builder.AddListeningPort(config.listen_addresses[i], (*credentials)[i], &ports[i]);
  }
  // gRPC request counts and latencies for the metrics endpoint.
  totemkv::server::GrpcMetrics grpc_metrics;
  {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(grpc_metrics.NewInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  // Let requests somewhat above etcd's 1.5 MiB limit through so they get
  // etcd's precise "request is too large" instead of a transport error.
  builder.SetMaxReceiveMessageSize(4 << 20);
  builder.SetMaxSendMessageSize(INT_MAX);
  builder.RegisterService(&kv);
  builder.RegisterService(&maintenance);
  builder.RegisterService(&cluster);
  builder.RegisterService(&admin);
  builder.RegisterService(&lease);
  builder.RegisterService(&watch);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  for (size_t i = 0; i < ports.size(); ++i) {
    if (server == nullptr || ports[i] == 0) {
      LogError(Event::kStartupFailed, {{"step", "listen"}, {"url", config.listen_client_urls[i]}});
      (*replicator)->Stop();
      return 1;
    }
  }
  std::string cluster_list;
  for (const auto& m : config.cluster) {
    if (!config.MultiRing()) {
      cluster_list += (cluster_list.empty() ? "" : ",") + m.name + "=" + std::to_string(m.id) +
                      "@" + m.host + ":" + std::to_string(m.port);
      continue;
    }
    for (const totemkv::server::RingAddress& a : m.rings) {  // one entry per ring
      cluster_list += (cluster_list.empty() ? "" : ",") + m.name + "=" + std::to_string(m.id) +
                      "@" + a.host + ":" + std::to_string(a.port) + "/" + std::to_string(a.ring);
    }
  }
  {
    const totemkv::server::TotemOptions& t = config.totem;
    char cluster_id[17];
    std::snprintf(cluster_id, sizeof(cluster_id), "%016llx",
                  static_cast<unsigned long long>(ctx.cluster_id()));
    LogInfo(Event::kServerStarted,
            {{"name", config.name},
             {"node_id", config.node_id},
             {"data_dir", config.data_dir},
             {"sync", config.sync},
             {"cluster_id", cluster_id},
             {"cluster", cluster_list},
             {"config_file", config.config_file.empty() ? "-" : config.config_file},
             {"totem_transport",
              t.transport == totem::TransportMode::kMulticast ? "multicast" : "unicast"},
             {"totem_encryption", t.encryption},
             {"token_timeout_ms", t.token_timeout_ms},
             {"join_timeout_ms", t.join_timeout_ms},
             {"consensus_timeout_ms", t.consensus_timeout_ms},
             {"merge_timeout_ms", t.merge_timeout_ms},
             {"window_size", t.window_size},
             {"max_messages", t.max_messages},
             {"packing", t.packing}});
  }
  std::unique_ptr<totemkv::server::MetricsServer> metrics;
  if (!config.metrics_addresses.empty()) {
    auto started = totemkv::server::MetricsServer::Start(
        config.metrics_addresses, [r = replicator->get(), &grpc_metrics] {
          return totemkv::server::RenderMetrics(*r, &grpc_metrics);
        });
    if (!started.ok()) {
      LogError(Event::kStartupFailed,
               {{"step", "metrics"}, {"error", started.status().ToString()}});
      server->Shutdown();
      (*replicator)->Stop();
      return 1;
    }
    metrics = std::move(*started);
    for (const std::string& url : config.listen_metrics_urls)
      LogInfo(Event::kListening, {{"kind", "metrics"}, {"url", url + "/metrics"}});
  }
  for (const std::string& url : config.listen_client_urls)
    LogInfo(Event::kListening, {{"kind", "client"}, {"url", url}});

  int sig = 0;
  sigwait(&stop_signals, &sig);
  LogInfo(Event::kShutdown, {{"signal", sig}});
  if (metrics != nullptr) metrics->Stop();
  watch_hub.Shutdown();  // ends the open watch streams, so Shutdown need not wait for them
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  (*replicator)->Stop();
  leases.Stop();  // after the replicator: its apply thread calls into `leases`
  server->Wait();
  LogInfo(Event::kStopped);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }

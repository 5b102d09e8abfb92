// The etcd v3 Watch service of totemkvd (etcdserverpb.Watch/Watch): one
// bidirectional stream per call, multiplexing any number of watchers kept
// by the WatchHub (see watch_hub.h for the watch semantics and limits).
//
// On the synchronous gRPC API: the handler thread writes responses, a
// second thread reads requests (ServerReaderWriter allows one Read and one
// Write at a time). A create the hub refuses is answered on the stream
// (created and canceled, watch_id -1, cancel_reason: etcd's way, so one
// bad create does not end the other watchers); a request with none of
// create / cancel / progress set, or a create with an unknown filter, ends
// the stream with INVALID_ARGUMENT. Cancels of unknown ids are ignored and
// `fragment` is not implemented (a revision is never split anyway).
// A client that half-closes keeps receiving events until it cancels (as
// etcd). The stream ends when the client cancels, when a write fails, and
// at WatchHub::Shutdown (the handler cancels the call so its reader thread
// wakes; the client sees the stream end with UNAVAILABLE or CANCELLED).
#ifndef TOTEMKV_SERVER_WATCH_SERVICE_H_
#define TOTEMKV_SERVER_WATCH_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "etcd/rpc.grpc.pb.h"
#include "etcd_services.h"
#include "watch_hub.h"

namespace totemkv::server {

// WatchCreateRequest -> WatchSpec. INVALID_ARGUMENT for an unknown filter.
grpc::Status FromProto(const etcdserverpb::WatchCreateRequest& r, WatchSpec* spec);

class WatchService final : public etcdserverpb::Watch::Service {
 public:
  // Both must outlive the service.
  WatchService(const ServerContext* ctx, WatchHub* hub) : ctx_(ctx), hub_(hub) {}
  grpc::Status Watch(grpc::ServerContext* c,
                     grpc::ServerReaderWriter<etcdserverpb::WatchResponse,
                                              etcdserverpb::WatchRequest>* stream) override;

 private:
  const ServerContext* ctx_;
  WatchHub* hub_;
};

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_WATCH_SERVICE_H_

// The etcd v3 Watch service: a reader thread turns WatchRequests into
// WatchHub::Stream calls, the handler thread writes what the stream
// produces (see watch_service.h).
#include "watch_service.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "convert.h"

namespace totemkv::server {
namespace {

// How often the writer looks at whether the client went away while no
// response is due (the synchronous API has no cancellation callback).
constexpr std::chrono::milliseconds kCancelPoll{200};

void EventToProto(const ::kvstore::Event& e, mvccpb::Event* out) {
  out->set_type(e.type == ::kvstore::Event::Type::kPut ? mvccpb::Event::PUT
                                                       : mvccpb::Event::DELETE);
  ToProto(e.kv, out->mutable_kv());
  if (e.prev_kv) ToProto(*e.prev_kv, out->mutable_prev_kv());
}

}  // namespace

grpc::Status FromProto(const etcdserverpb::WatchCreateRequest& r, WatchSpec* spec) {
  *spec = WatchSpec();
  spec->key = r.key();
  spec->range_end = r.range_end();
  spec->start_revision = r.start_revision();
  spec->prev_kv = r.prev_kv();
  spec->progress_notify = r.progress_notify();
  spec->watch_id = r.watch_id();
  for (int f : r.filters()) {
    if (f == etcdserverpb::WatchCreateRequest::NOPUT) {
      spec->no_put = true;
    } else if (f == etcdserverpb::WatchCreateRequest::NODELETE) {
      spec->no_delete = true;
    } else {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "etcdserver: unknown watch filter " + std::to_string(f) +
                              " (want NOPUT = 0 or NODELETE = 1)");
    }
  }
  return grpc::Status::OK;
}

grpc::Status WatchService::Watch(
    grpc::ServerContext* c,
    grpc::ServerReaderWriter<etcdserverpb::WatchResponse, etcdserverpb::WatchRequest>* stream) {
  std::shared_ptr<WatchHub::Stream> ws = hub_->OpenStream();
  std::mutex mu;
  grpc::Status request_error;  // guarded by mu: why the reader ended the stream
  std::atomic<bool> reader_done{false};

  std::thread reader([&] {
    etcdserverpb::WatchRequest req;
    while (stream->Read(&req)) {
      grpc::Status bad;
      switch (req.request_union_case()) {
        case etcdserverpb::WatchRequest::kCreateRequest: {
          WatchSpec spec;
          bad = FromProto(req.create_request(), &spec);
          if (bad.ok()) (void)ws->Create(spec);  // a refusal is answered on the stream
          break;
        }
        case etcdserverpb::WatchRequest::kCancelRequest:
          (void)ws->Cancel(req.cancel_request().watch_id());  // unknown ids: ignored, as etcd
          break;
        case etcdserverpb::WatchRequest::kProgressRequest:
          ws->RequestProgress();
          break;
        default:
          bad = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "etcdserver: watch request has no create_request, cancel_request "
                             "or progress_request");
          break;
      }
      if (!bad.ok()) {
        {
          std::lock_guard<std::mutex> lock(mu);
          request_error = bad;
        }
        reader_done = true;  // before Close: the writer must not cancel the call
        ws->Close();
        break;
      }
    }
    reader_done = true;
  });

  grpc::Status result = grpc::Status::OK;
  std::vector<WatchOutput> outputs;
  for (;;) {
    outputs.clear();
    if (!ws->Next(&outputs, kCancelPoll)) {
      std::lock_guard<std::mutex> lock(mu);
      result = !request_error.ok()
                   ? request_error
                   : grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: server stopped");
      break;
    }
    if (c->IsCancelled()) {
      result = grpc::Status(grpc::StatusCode::CANCELLED, "watch stream canceled by the client");
      break;
    }
    bool write_failed = false;
    for (WatchOutput& o : outputs) {
      etcdserverpb::WatchResponse resp;
      ctx_->FillHeader(resp.mutable_header(), o.revision);
      resp.set_watch_id(o.watch_id);
      switch (o.kind) {
        case WatchOutput::Kind::kCreated:
          resp.set_created(true);
          break;
        case WatchOutput::Kind::kRefused:
          resp.set_created(true);
          resp.set_canceled(true);
          resp.set_cancel_reason(o.cancel_reason);
          break;
        case WatchOutput::Kind::kCanceled:
          resp.set_canceled(true);
          resp.set_compact_revision(o.compact_revision);
          resp.set_cancel_reason(o.cancel_reason);
          break;
        case WatchOutput::Kind::kEvents:
          for (const ::kvstore::Event& e : o.events) EventToProto(e, resp.add_events());
          break;
        case WatchOutput::Kind::kProgress:
          break;
      }
      if (!stream->Write(resp)) {
        write_failed = true;
        break;
      }
    }
    if (write_failed) {
      result = grpc::Status(grpc::StatusCode::UNAVAILABLE, "watch stream broken");
      break;
    }
  }
  ws->Close();
  // The reader may be blocked in Read(): cancelling the call wakes it.
  if (!reader_done) c->TryCancel();
  reader.join();
  return result;
}

}  // namespace totemkv::server

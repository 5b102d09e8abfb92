// Server credentials for totemkvd's client gRPC listeners: plaintext for
// http:// and unix:// URLs; TLS for https:// URLs from the PEM files named
// by --client-cert-file / --client-key-file, and with --client-cert-auth a
// client certificate signed by --client-trusted-ca-file is required (the
// handshake fails without one). The mapping to etcd's flags is in
// server_config.h.
#ifndef TOTEMKV_SERVER_CLIENT_TLS_H_
#define TOTEMKV_SERVER_CLIENT_TLS_H_

#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <vector>

#include "server_config.h"
#include "totem/status.h"

namespace totemkv::server {

// One credentials object per config.listen_addresses entry (same order).
// Reads the PEM files (at most 1 MiB each). Errors: IO_ERROR naming a file
// that cannot be read, INVALID_ARGUMENT for a file without a PEM block.
totem::StatusOr<std::vector<std::shared_ptr<grpc::ServerCredentials>>> ListenCredentials(
    const ServerConfig& config);

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_CLIENT_TLS_H_

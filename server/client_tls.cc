// TLS credentials for the client listeners (see client_tls.h).
#include "client_tls.h"

#include <grpcpp/security/server_credentials.h>

#include <fstream>
#include <sstream>

namespace totemkv::server {
namespace {

totem::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return totem::IoError("--" + flag + ": cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  std::string pem = text.str();
  if (pem.size() > (1 << 20)) return totem::IoError("--" + flag + ": " + path + " is over 1 MiB");
  if (pem.find("-----BEGIN ") == std::string::npos) {
    return totem::InvalidArgument("--" + flag + ": " + path + " holds no PEM block");
  }
  return pem;
}

}  // namespace

totem::StatusOr<std::vector<std::shared_ptr<grpc::ServerCredentials>>> ListenCredentials(
    const ServerConfig& config) {
  std::shared_ptr<grpc::ServerCredentials> tls;
  std::vector<std::shared_ptr<grpc::ServerCredentials>> out;
  for (size_t i = 0; i < config.listen_addresses.size(); ++i) {
    const bool secure = i < config.listen_tls.size() && config.listen_tls[i];
    if (!secure) {
      out.push_back(grpc::InsecureServerCredentials());
      continue;
    }
    if (tls == nullptr) {
      totem::StatusOr<std::string> cert = ReadPem("client-cert-file", config.client_cert_file);
      if (!cert.ok()) return cert.status();
      totem::StatusOr<std::string> key = ReadPem("client-key-file", config.client_key_file);
      if (!key.ok()) return key.status();
      grpc::SslServerCredentialsOptions options(
          config.client_cert_auth ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                  : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
      if (!config.client_trusted_ca_file.empty()) {
        totem::StatusOr<std::string> ca =
            ReadPem("client-trusted-ca-file", config.client_trusted_ca_file);
        if (!ca.ok()) return ca.status();
        options.pem_root_certs = *ca;
      }
      options.pem_key_cert_pairs.push_back({*key, *cert});
      tls = grpc::SslServerCredentials(options);
    }
    out.push_back(tls);
  }
  return out;
}

}  // namespace totemkv::server

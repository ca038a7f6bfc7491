// Building OpenSSL contexts from PEM files, for both ends of a pincer
// connection. Pure setup: no sockets, nothing blocks but reading the files.
// Nothing throws; problems come back as values that name the file.
#pragma once

#include <asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <vector>

namespace pincer::tls {

// Which of the configured files a problem is about.
enum class File { kCert, kKey, kCa };

// The config key that names `file` ("tls.cert", "tls.key", "tls.client_ca").
inline const char* ConfigKey(File file) {
  return file == File::kCert ? "tls.cert" : file == File::kKey ? "tls.key" : "tls.client_ca";
}

struct Problem {
  File file;
  // Names the path: "'/etc/pincer/key.pem' does not match the certificate in ...".
  std::string message;
};

// pincerd's side: `cert` is a PEM chain (leaf first), `key` its private key
// (unencrypted PEM; the two must match). With a non-empty `client_ca`,
// every peer must present a certificate signed by one of the CAs in that
// PEM file (mutual TLS). TLS 1.2 is the oldest version offered.
// nullptr, and `*problems` filled, when a file is missing or unusable.
std::shared_ptr<asio::ssl::context> MakeServerContext(const std::string& cert,
                                                      const std::string& key,
                                                      const std::string& client_ca,
                                                      std::vector<Problem>* problems);

// A client's side (pincerctl, pincer-worker). `ca` (required) is the PEM
// file of CAs the server's certificate must chain to. `cert` and `key` (both
// or neither) are this client's certificate for a server that asks for one.
struct ClientFiles {
  std::string ca;
  std::string cert;
  std::string key;
};

// nullptr with `*error` set (naming the flag's file) when a file is
// unusable or only one of cert/key is given.
std::shared_ptr<asio::ssl::context> MakeClientContext(const ClientFiles& files, std::string* error);

// Prepares a client connection to `host` (a DNS name, or an IP literal as in
// "127.0.0.1" or "::1"): the server's certificate must name it (subjectAltName,
// DNS or IP), and DNS names are sent as SNI. Call before the handshake.
// False with `*error` set when OpenSSL refuses the name.
bool ExpectServerName(SSL* ssl, const std::string& host, std::string* error);

// A handshake error as a sentence for logs and users: OpenSSL's verify
// result when certificate verification failed ("certificate has expired"),
// else the error's own message.
std::string DescribeHandshakeError(SSL* ssl, const std::error_code& ec);

}  // namespace pincer::tls

#include "tls/tls_context.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <utility>

#include "common/read_file.h"

namespace pincer::tls {
namespace {

using asio::ssl::context;

// An encrypted key would make OpenSSL prompt on the terminal; pincer runs
// unattended, so a key that needs a passphrase simply fails to load.
int NoPassphrase(char*, int, int, void*) { return 0; }

std::shared_ptr<context> NewContext(context::method method, std::string* error) {
  try {
    auto ctx = std::make_shared<context>(method);
    SSL_CTX* native = ctx->native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_default_passwd_cb(native, &NoPassphrase);
    return ctx;
  } catch (const std::exception& e) {
    *error = std::string("cannot create a TLS context: ") + e.what();
    return nullptr;
  }
}

// Far above any certificate chain or CA bundle; a reload reads the files on
// the event loop, so a path like /dev/zero must not be read without end
// (ReadRegularFile refuses devices and FIFOs without opening them for long).
constexpr std::size_t kMaxPemBytes = 4 << 20;

std::optional<std::string> Read(const std::string& path, std::string* error) {
  std::string why;
  std::optional<std::string> text = ReadRegularFile(path, kMaxPemBytes, &why);
  if (!text) *error = "cannot read '" + path + "': " + why;
  return text;
}

std::string Unusable(const std::string& path, std::string_view what, const std::error_code& ec) {
  return "'" + path + "' is not " + std::string(what) + " (" + ec.message() + ")";
}

// Loads `cert` and `key` into `ctx`; nullopt when all went well.
std::optional<Problem> LoadCertAndKey(context& ctx, const std::string& cert,
                                      const std::string& key) {
  std::string error;
  std::optional<std::string> cert_text = Read(cert, &error);
  if (!cert_text) return Problem{File::kCert, error};
  std::error_code ec;
  ctx.use_certificate_chain(asio::buffer(*cert_text), ec);
  if (ec) return Problem{File::kCert, Unusable(cert, "a PEM certificate chain", ec)};
  std::optional<std::string> key_text = Read(key, &error);
  if (!key_text) return Problem{File::kKey, error};
  // Parsed apart from the context, so that a key that is not one and a key
  // that belongs to another certificate get different messages.
  BIO* bio = BIO_new_mem_buf(key_text->data(), static_cast<int>(key_text->size()));
  EVP_PKEY* pkey = bio ? PEM_read_bio_PrivateKey(bio, nullptr, &NoPassphrase, nullptr) : nullptr;
  BIO_free(bio);
  // The key text is not needed past this point; do not leave it in memory.
  OPENSSL_cleanse(key_text->data(), key_text->size());
  if (!pkey) {
    ec = std::error_code(static_cast<int>(ERR_get_error()), asio::error::get_ssl_category());
    return Problem{File::kKey, Unusable(key, "an unencrypted PEM private key", ec)};
  }
  const bool matches = SSL_CTX_use_PrivateKey(ctx.native_handle(), pkey) == 1 &&
                       SSL_CTX_check_private_key(ctx.native_handle()) == 1;
  EVP_PKEY_free(pkey);
  if (!matches) {
    return Problem{File::kKey, "'" + key + "' does not match the certificate in '" + cert + "'"};
  }
  return std::nullopt;
}

// Trusts the CAs in `ca` for verifying the peer.
std::string LoadCa(context& ctx, const std::string& ca) {
  std::string error;
  std::optional<std::string> text = Read(ca, &error);
  if (!text) return error;
  std::error_code ec;
  ctx.add_certificate_authority(asio::buffer(*text), ec);
  if (ec) return Unusable(ca, "a PEM file of CA certificates", ec);
  return "";
}

}  // namespace

std::shared_ptr<context> MakeServerContext(const std::string& cert, const std::string& key,
                                           const std::string& client_ca,
                                           std::vector<Problem>* problems) {
  std::string error;
  std::shared_ptr<context> ctx = NewContext(context::tls_server, &error);
  if (!ctx) {
    problems->push_back({File::kCert, error});
    return nullptr;
  }
  const std::size_t before = problems->size();
  if (std::optional<Problem> bad = LoadCertAndKey(*ctx, cert, key)) {
    problems->push_back(std::move(*bad));
  }
  if (!client_ca.empty()) {
    if (std::string e = LoadCa(*ctx, client_ca); !e.empty()) {
      problems->push_back({File::kCa, std::move(e)});
    } else {
      std::error_code ec;
      ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert, ec);
      // Tells clients which CAs are accepted, so one with several
      // certificates can pick the right one.
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(client_ca.c_str())) {
        SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
      }
      ERR_clear_error();
    }
  }
  ERR_clear_error();
  if (problems->size() != before) return nullptr;
  return ctx;
}

std::shared_ptr<context> MakeClientContext(const ClientFiles& files, std::string* error) {
  if (files.ca.empty()) {
    *error = "--tls-ca is required to speak TLS";
    return nullptr;
  }
  if (files.cert.empty() != files.key.empty()) {
    *error = files.cert.empty() ? "--tls-key needs --tls-cert" : "--tls-cert needs --tls-key";
    return nullptr;
  }
  std::shared_ptr<context> ctx = NewContext(context::tls_client, error);
  if (!ctx) return nullptr;
  if (std::string e = LoadCa(*ctx, files.ca); !e.empty()) {
    ERR_clear_error();
    *error = "--tls-ca: " + e;
    return nullptr;
  }
  std::error_code ec;
  ctx->set_verify_mode(asio::ssl::verify_peer, ec);
  if (!files.cert.empty()) {
    if (std::optional<Problem> bad = LoadCertAndKey(*ctx, files.cert, files.key)) {
      ERR_clear_error();
      *error = (bad->file == File::kCert ? "--tls-cert: " : "--tls-key: ") + bad->message;
      return nullptr;
    }
  }
  ERR_clear_error();
  return ctx;
}

bool ExpectServerName(SSL* ssl, const std::string& host, std::string* error) {
  std::error_code ec;
  asio::ip::make_address(host, ec);
  const bool is_ip = !ec;
  int ok = 0;
  if (is_ip) {
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  } else {
    // SNI carries names only, never addresses (RFC 6066).
    ok = SSL_set1_host(ssl, host.c_str()) == 1 &&
         SSL_set_tlsext_host_name(ssl, const_cast<char*>(host.c_str())) == 1;
  }
  ERR_clear_error();
  if (ok != 1) *error = "cannot check the server's certificate for '" + host + "'";
  return ok == 1;
}

std::string DescribeHandshakeError(SSL* ssl, const std::error_code& ec) {
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
  }
  return ec.message();
}

}  // namespace pincer::tls

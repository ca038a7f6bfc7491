// Certificates for TLS tests, made by the `openssl` command into a temp dir:
// a CA, a server certificate for 127.0.0.1 / ::1 / localhost signed by it, a
// client certificate signed by it, and a second, unrelated CA with its own
// server and client certificates (what a stranger would present).
//
//   TestCerts certs;
//   ASSERT_TRUE(certs.Make());
//   DaemonProcess daemon("tls: { cert: " + certs.server_cert() + ", key: " + ...);
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "support/temp_dir.h"

namespace pincer::test {

class TestCerts {
 public:
  // Runs openssl a few times (P-256 keys); the message holds openssl's stderr on failure.
  ::testing::AssertionResult Make();

  // Issues another server certificate for 127.0.0.1/localhost, with its own
  // key, signed by the first CA (or the other CA), written as
  // <name>.crt/<name>.key. For rotation tests.
  ::testing::AssertionResult IssueServer(const std::string& name, bool other_ca = false);
  // Issues another client certificate (CN `name`), likewise.
  ::testing::AssertionResult IssueClient(const std::string& name, bool other_ca = false);
  // Any certificate: <name>.crt/<name>.key signed by `ca` ("ca" or
  // "other-ca"), with `extensions` in openssl's extfile syntax.
  ::testing::AssertionResult Issue(const std::string& name, const std::string& ca,
                                   const std::string& subject, const std::string& extensions);

  std::string ca() const { return dir_.Join("ca.crt"); }
  std::string server_cert() const { return dir_.Join("server.crt"); }
  std::string server_key() const { return dir_.Join("server.key"); }
  std::string client_cert() const { return dir_.Join("client.crt"); }
  std::string client_key() const { return dir_.Join("client.key"); }
  std::string other_ca() const { return dir_.Join("other-ca.crt"); }
  std::string other_client_cert() const { return dir_.Join("other-client.crt"); }
  std::string other_client_key() const { return dir_.Join("other-client.key"); }
  std::string Path(const std::string& file) const { return dir_.Join(file); }

  // The SHA-256 fingerprint line `openssl x509 -fingerprint` prints for a
  // certificate file, to tell two certificates apart.
  std::string Fingerprint(const std::string& cert_file) const;

 private:
  ::testing::AssertionResult Openssl(const std::vector<std::string>& args) const;
  ::testing::AssertionResult MakeCa(const std::string& name, const std::string& subject);

  TempDir dir_{"certs"};
};

}  // namespace pincer::test

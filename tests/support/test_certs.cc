#include "support/test_certs.h"

#include <string>
#include <vector>

#include "support/subprocess.h"

namespace pincer::test {
namespace {

constexpr char kServerExtensions[] =
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=serverAuth\n"
    "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n";

constexpr char kClientExtensions[] =
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=clientAuth\n";

}  // namespace

::testing::AssertionResult TestCerts::Openssl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult r = RunProcess(argv);
  if (r.exit_code != 0) {
    std::string cmd;
    for (const std::string& a : argv) cmd += a + " ";
    return ::testing::AssertionFailure() << cmd << "exited " << r.exit_code << ": " << r.err;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult TestCerts::MakeCa(const std::string& name, const std::string& subject) {
  return Openssl({"req",      "-x509",
                  "-newkey",  "ec",
                  "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes",   "-sha256",
                  "-days",    "2",
                  "-subj",    subject,
                  "-keyout",  dir_.Join(name + ".key"),
                  "-out",     dir_.Join(name + ".crt"),
                  "-addext",  "basicConstraints=critical,CA:TRUE",
                  "-addext",  "keyUsage=critical,keyCertSign,cRLSign"});
}

::testing::AssertionResult TestCerts::Issue(const std::string& name, const std::string& ca,
                                            const std::string& subject,
                                            const std::string& extensions) {
  const std::string ext = dir_.WriteFile(name + ".ext", extensions);
  if (auto r = Openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-subj", subject, "-keyout", dir_.Join(name + ".key"), "-out",
                        dir_.Join(name + ".csr")});
      !r) {
    return r;
  }
  return Openssl({"x509", "-req", "-in", dir_.Join(name + ".csr"), "-CA", dir_.Join(ca + ".crt"),
                  "-CAkey", dir_.Join(ca + ".key"), "-CAcreateserial", "-days", "2", "-sha256",
                  "-extfile", ext, "-out", dir_.Join(name + ".crt")});
}

::testing::AssertionResult TestCerts::Make() {
  if (auto r = MakeCa("ca", "/CN=pincer test CA"); !r) return r;
  if (auto r = MakeCa("other-ca", "/CN=unrelated test CA"); !r) return r;
  if (auto r = IssueServer("server"); !r) return r;
  if (auto r = IssueClient("client"); !r) return r;
  return IssueClient("other-client", /*other_ca=*/true);
}

::testing::AssertionResult TestCerts::IssueServer(const std::string& name, bool other_ca) {
  return Issue(name, other_ca ? "other-ca" : "ca", "/CN=" + name, kServerExtensions);
}

::testing::AssertionResult TestCerts::IssueClient(const std::string& name, bool other_ca) {
  return Issue(name, other_ca ? "other-ca" : "ca", "/CN=" + name, kClientExtensions);
}

std::string TestCerts::Fingerprint(const std::string& cert_file) const {
  ProcessResult r = RunProcess(
      {"/usr/bin/openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", cert_file});
  return r.exit_code == 0 ? r.out : "";
}

}  // namespace pincer::test

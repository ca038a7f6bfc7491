// TLS on pincerd's TCP listener (docs/security.md, docs/configuration.md
// `tls`): real pincerd, pincerctl, pincer-worker and the Python worker, with
// certificates made by the openssl command (support/test_certs.h). Covers
// server verification by CA and name, a plaintext hello refused, tasks
// end to end over TLS, mutual TLS, certificate rotation on reload, a bad
// certificate refused at start and at reload, and the unix socket staying
// plain.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"
#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/raw_peer.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kDaemon = std::string(PINCER_BUILD_DIR) + "/pincerd";
const std::string kPythonExample =
    std::string(PINCER_SOURCE_DIR) + "/workers/python/example_upper.py";

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void CopyFile(const std::string& from, const std::string& to) {
  // Written whole under a temporary name, as a certificate manager would.
  const std::string tmp = to + ".tmp";
  std::ofstream(tmp, std::ios::binary) << ReadFileOrEmpty(from);
  std::rename(tmp.c_str(), to.c_str());
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(certs_.Make()); }

  void TearDown() override {
    if (HasFailure() && daemon_) {
      for (std::size_t i = 0; i < children_.size(); ++i) {
        std::cerr << "--- child " << i << " stderr:\n"
                  << ReadFileOrEmpty(daemon_->dir() + "/child" + std::to_string(i) + ".err");
      }
    }
    children_.clear();
  }

  // The `tls` section; the daemon reads the cert and key from files in its
  // own dir, so a test can rotate them.
  std::string TlsConfig(bool mutual = false) const {
    std::string tls = "tls:\n  cert: {dir}/server.crt\n  key: {dir}/server.key\n";
    if (mutual) tls += "  client_ca: " + certs_.ca() + "\n";
    return tls;
  }

  void StartDaemon(bool mutual = false, const std::string& extra = "") {
    daemon_ =
        std::make_unique<DaemonProcess>("store: { kind: memory }\n" + TlsConfig(mutual) + extra);
    CopyFile(certs_.server_cert(), daemon_->dir() + "/server.crt");
    CopyFile(certs_.server_key(), daemon_->dir() + "/server.key");
    ASSERT_TRUE(daemon_->Start());
  }

  // pincerctl over TLS trusting `ca`; `cert` presents a client certificate.
  CtlResult Ctl(const std::vector<std::string>& args, const std::string& ca,
                const std::string& cert = "", const std::string& key = "") {
    std::vector<std::string> all = {"--tls-ca", ca};
    if (!cert.empty()) all.insert(all.end(), {"--tls-cert", cert, "--tls-key", key});
    all.insert(all.end(), args.begin(), args.end());
    return RunCtl(daemon_->address(), all);
  }

  // Starts a child whose stderr goes to <daemon dir>/child<N>.err.
  std::size_t StartChild(const std::vector<std::string>& argv, EnvChanges env = {}) {
    for (const char* name : {"PINCER_ADDR", "PINCER_TOKEN", "PINCER_SPAWN_ID", "PINCER_TLS_CA",
                             "PINCER_TLS_CERT", "PINCER_TLS_KEY"}) {
      env.try_emplace(name, std::nullopt);
    }
    const std::size_t index = children_.size();
    children_.push_back(std::make_unique<ChildProcess>());
    const std::string base = daemon_->dir() + "/child" + std::to_string(index);
    EXPECT_EQ(children_.back()->Start(argv, base + ".out", base + ".err", env), "");
    return index;
  }

  std::string ChildErr(std::size_t index) const {
    return ReadFileOrEmpty(daemon_->dir() + "/child" + std::to_string(index) + ".err");
  }

  // Workers connected, as `pincerctl workers --json` shows them.
  std::size_t WorkerCount(const std::string& ca, const std::string& cert = "",
                          const std::string& key = "") {
    CtlResult r = Ctl({"--json", "workers"}, ca, cert, key);
    return r.exit_code == 0 && r.Json().is_array() ? r.Json().size() : 0;
  }

  client::Result<std::unique_ptr<client::Client>> Connect(const std::string& ca,
                                                          const std::string& cert = "",
                                                          const std::string& key = "") {
    client::ConnectOptions options;
    options.tls = {ca, cert, key};
    return client::Client::Connect(daemon_->address(), "client", "", json::object(), options);
  }

  TestCerts certs_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::vector<std::unique_ptr<ChildProcess>> children_;
};

TEST_F(TlsTest, CtlWorksWithTheRightCaAndFailsWithAnother) {
  StartDaemon();
  CtlResult ok = Ctl({"--json", "stats"}, certs_.ca());
  EXPECT_EQ(ok.exit_code, 0) << ok;
  EXPECT_TRUE(ok.Json().is_object()) << ok;

  CtlResult wrong = Ctl({"stats"}, certs_.other_ca());
  EXPECT_EQ(wrong.exit_code, 3) << wrong;
  EXPECT_TRUE(Contains(wrong.err, "TLS handshake")) << wrong;
  EXPECT_TRUE(Contains(wrong.err, "certificate verify failed")) << wrong;
  EXPECT_TRUE(Contains(wrong.err, "--tls-ca")) << wrong;

  // The environment sets the same thing.
  CtlOptions env;
  env.env = {{"PINCER_TLS_CA", certs_.ca()}};
  CtlResult from_env = RunCtl(daemon_->address(), {"stats"}, env);
  EXPECT_EQ(from_env.exit_code, 0) << from_env;
  EXPECT_TRUE(Contains(daemon_->ReadStderr(), "TLS handshake failed")) << daemon_->ReadStderr();
}

TEST_F(TlsTest, ServerNameIsChecked) {
  StartDaemon();
  // The certificate names 127.0.0.1, ::1 and localhost, and nothing else.
  const std::string port = daemon_->address().substr(daemon_->address().rfind(':') + 1);
  CtlResult by_name = RunCtl("localhost:" + port, {"--tls-ca", certs_.ca(), "stats"});
  EXPECT_EQ(by_name.exit_code, 0) << by_name;

  // A certificate from the trusted CA that names another host is refused.
  ASSERT_TRUE(
      certs_.Issue("elsewhere", "ca", "/CN=elsewhere", "subjectAltName=DNS:elsewhere.example\n"));
  CopyFile(certs_.Path("elsewhere.crt"), daemon_->dir() + "/server.crt");
  CopyFile(certs_.Path("elsewhere.key"), daemon_->dir() + "/server.key");
  CtlResult reload = Ctl({"reload"}, certs_.ca());
  ASSERT_EQ(reload.exit_code, 0) << reload;
  CtlResult mismatch = Ctl({"stats"}, certs_.ca());
  EXPECT_EQ(mismatch.exit_code, 3) << mismatch;
  EXPECT_TRUE(Contains(mismatch.err, "certificate verify failed")) << mismatch;
}

TEST_F(TlsTest, PlaintextHelloIsNotWelcomed) {
  StartDaemon();
  RawPeer raw;
  ASSERT_EQ(raw.Connect(daemon_->address()), "");
  ASSERT_TRUE(raw.SendJson({{"type", "hello"}, {"role", "client"}, {"proto", 1}, {"token", ""}}));
  EXPECT_TRUE(raw.WaitClosed(seconds(10)));
  // Whatever came back (at most a TLS alert) was not a line of the protocol.
  std::optional<std::string> line = raw.ReadLine(milliseconds(0));
  EXPECT_TRUE(!line || !Contains(*line, "welcome")) << *line;

  // Nor does pincerctl without --tls-ca get anywhere.
  CtlResult plain = RunCtl(daemon_->address(), {"stats"});
  EXPECT_EQ(plain.exit_code, 3) << plain;
  // pincerd serves on.
  EXPECT_EQ(Ctl({"stats"}, certs_.ca()).exit_code, 0);
}

TEST_F(TlsTest, SilentTlsPeerIsClosedByHelloTimeoutWhileOthersAreServed) {
  StartDaemon(false, "limits: { hello_timeout: 500ms }\n");
  RawPeer silent;
  ASSERT_EQ(silent.Connect(daemon_->address()), "");
  // Half a TLS record header, then nothing: the handshake never completes.
  ASSERT_TRUE(silent.SendRaw(std::string("\x16\x03\x01", 3)));
  RawPeer mute;
  ASSERT_EQ(mute.Connect(daemon_->address()), "");
  // The loop is not held by the handshakes in progress.
  CtlResult served = Ctl({"stats"}, certs_.ca());
  EXPECT_EQ(served.exit_code, 0) << served;
  EXPECT_TRUE(silent.WaitClosed(seconds(30)));
  EXPECT_TRUE(mute.WaitClosed(seconds(30)));
}

TEST_F(TlsTest, ConnectionsPastTheLimitAreClosedBeforeTheirHandshake) {
  StartDaemon(false, "limits: { max_connections: 1 }\n");
  RawPeer holder;  // takes the one connection, in its handshake
  ASSERT_EQ(holder.Connect(daemon_->address()), "");
  // pincerd cannot answer too_many_connections before a handshake: it closes.
  ASSERT_TRUE(WaitFor([&] {
    CtlResult r = Ctl({"stats"}, certs_.ca());
    return r.exit_code == 3;
  }));
  holder.Close();
  EXPECT_TRUE(WaitFor([&] { return Ctl({"stats"}, certs_.ca()).exit_code == 0; }))
      << daemon_->ReadStderr();
  EXPECT_TRUE(daemon_->running());
}

TEST_F(TlsTest, TaskGoesFromCtlToPincerWorkerOverTls) {
  StartDaemon();
  const std::size_t worker =
      StartChild({kWorker, "--addr", daemon_->address(), "--tls-ca", certs_.ca(), "--skill", "echo",
                  "--name", "tls-worker", "--", "cat"});
  ASSERT_TRUE(WaitFor([&] { return WorkerCount(certs_.ca()) == 1; })) << ChildErr(worker);
  CtlResult r = Ctl({"--json", "submit", "--skill", "echo", "--payload", "{\"x\":[1,2]}", "--wait"},
                    certs_.ca());
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.Json()["state"], "succeeded") << r;
  EXPECT_EQ(r.Json()["output"], json::parse("{\"x\":[1,2]}")) << r;
}

TEST_F(TlsTest, PincerWorkerWithTheWrongCaDoesNotConnectAndSaysWhy) {
  StartDaemon();
  const std::size_t worker =
      StartChild({kWorker, "--addr", daemon_->address(), "--skill", "echo", "--", "cat"},
                 {{"PINCER_TLS_CA", certs_.other_ca()}});
  EXPECT_TRUE(WaitFor([&] { return Contains(ChildErr(worker), "certificate verify failed"); }))
      << ChildErr(worker);
  EXPECT_EQ(WorkerCount(certs_.ca()), 0u);
  EXPECT_TRUE(children_[worker]->running());  // it keeps retrying
}

TEST_F(TlsTest, TaskGoesToThePythonWorkerOverTls) {
  StartDaemon();
  const std::size_t python = StartChild({"/usr/bin/env", "python3", kPythonExample, "--addr",
                                         daemon_->address(), "--tls-ca", certs_.ca()},
                                        {{"WORKER_NAME", "py-tls"}});
  ASSERT_TRUE(WaitFor([&] { return WorkerCount(certs_.ca()) == 1; })) << ChildErr(python);
  CtlResult r = Ctl({"--json", "submit", "--skill", "upper", "--payload", "\"hello\"", "--wait"},
                    certs_.ca());
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.Json()["output"], "HELLO") << r;
}

TEST_F(TlsTest, PythonWorkerWithTheWrongCaDoesNotConnect) {
  StartDaemon();
  const std::size_t python =
      StartChild({"/usr/bin/env", "python3", kPythonExample},
                 {{"PINCER_ADDR", daemon_->address()}, {"PINCER_TLS_CA", certs_.other_ca()}});
  EXPECT_TRUE(WaitFor([&] { return Contains(ChildErr(python), "CERTIFICATE_VERIFY_FAILED"); }))
      << ChildErr(python);
  EXPECT_EQ(WorkerCount(certs_.ca()), 0u);
}

TEST_F(TlsTest, MutualTlsRefusesAClientWithoutACertificateAndServesOneWithIt) {
  StartDaemon(/*mutual=*/true);
  CtlResult none = Ctl({"stats"}, certs_.ca());
  EXPECT_EQ(none.exit_code, 3) << none;
  EXPECT_TRUE(Contains(none.err, "--tls-cert")) << none;

  CtlResult stranger =
      Ctl({"stats"}, certs_.ca(), certs_.other_client_cert(), certs_.other_client_key());
  EXPECT_EQ(stranger.exit_code, 3) << stranger;

  CtlResult good = Ctl({"--json", "stats"}, certs_.ca(), certs_.client_cert(), certs_.client_key());
  EXPECT_EQ(good.exit_code, 0) << good;

  // Workers too: the C++ one by flags, the Python one by environment.
  const std::size_t worker = StartChild(
      {kWorker, "--addr", daemon_->address(), "--tls-ca", certs_.ca(), "--tls-cert",
       certs_.client_cert(), "--tls-key", certs_.client_key(), "--skill", "echo", "--", "cat"});
  const std::size_t python = StartChild({"/usr/bin/env", "python3", kPythonExample},
                                        {{"PINCER_ADDR", daemon_->address()},
                                         {"PINCER_TLS_CA", certs_.ca()},
                                         {"PINCER_TLS_CERT", certs_.client_cert()},
                                         {"PINCER_TLS_KEY", certs_.client_key()}});
  ASSERT_TRUE(WaitFor([&] {
    return WorkerCount(certs_.ca(), certs_.client_cert(), certs_.client_key()) == 2;
  })) << ChildErr(worker)
      << ChildErr(python);
  CtlResult task = Ctl({"--json", "submit", "--skill", "upper", "--payload", "\"m\"", "--wait"},
                       certs_.ca(), certs_.client_cert(), certs_.client_key());
  EXPECT_EQ(task.exit_code, 0) << task;
  EXPECT_EQ(task.Json()["output"], "M") << task;

  // A worker without a certificate is not let in.
  const std::size_t bare =
      StartChild({kWorker, "--addr", daemon_->address(), "--tls-ca", certs_.ca(), "--", "cat"});
  EXPECT_TRUE(WaitFor([&] { return Contains(ChildErr(bare), "alert"); })) << ChildErr(bare);
  EXPECT_EQ(WorkerCount(certs_.ca(), certs_.client_cert(), certs_.client_key()), 2u);
}

TEST_F(TlsTest, ReloadRotatesTheCertificateAndKeepsExistingConnections) {
  StartDaemon();
  auto before = Connect(certs_.ca());
  ASSERT_TRUE(before.ok()) << before.error().ToString();

  // The new certificate comes from another CA, so which one a connection
  // sees shows in which CA it must trust.
  ASSERT_TRUE(certs_.IssueServer("rotated", /*other_ca=*/true));
  CopyFile(certs_.Path("rotated.crt"), daemon_->dir() + "/server.crt");
  CopyFile(certs_.Path("rotated.key"), daemon_->dir() + "/server.key");
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return Ctl({"stats"}, certs_.other_ca()).exit_code == 0; }))
      << daemon_->ReadStderr();
  EXPECT_EQ(Ctl({"stats"}, certs_.ca()).exit_code, 3);

  // The connection made before the rotation is still served.
  auto stats = (*before)->Request({{"type", "stats"}});
  EXPECT_TRUE(stats.ok()) << stats.error().ToString();

  // And `pincerctl reload` rotates too.
  CopyFile(certs_.server_cert(), daemon_->dir() + "/server.crt");
  CopyFile(certs_.server_key(), daemon_->dir() + "/server.key");
  CtlResult reload = Ctl({"reload"}, certs_.other_ca());
  EXPECT_EQ(reload.exit_code, 0) << reload;
  EXPECT_EQ(Ctl({"stats"}, certs_.ca()).exit_code, 0);
}

TEST_F(TlsTest, ReloadWithABadCertificateIsRefusedAndTheOldOneStays) {
  StartDaemon();
  auto before = Connect(certs_.ca());
  ASSERT_TRUE(before.ok()) << before.error().ToString();

  // A key that does not belong to the certificate.
  ASSERT_TRUE(certs_.IssueServer("unrelated"));
  CopyFile(certs_.Path("unrelated.key"), daemon_->dir() + "/server.key");
  CtlResult reload = Ctl({"reload"}, certs_.ca());
  EXPECT_EQ(reload.exit_code, 1) << reload;
  EXPECT_TRUE(Contains(reload.err, "reload_failed")) << reload;
  EXPECT_TRUE(Contains(reload.err, "tls.key")) << reload;
  EXPECT_TRUE(Contains(reload.err, "does not match")) << reload;

  // Not a certificate at all.
  CopyFile(certs_.server_key(), daemon_->dir() + "/server.key");
  std::ofstream(daemon_->dir() + "/server.crt") << "not a certificate\n";
  reload = Ctl({"reload"}, certs_.ca());
  EXPECT_EQ(reload.exit_code, 1) << reload;
  EXPECT_TRUE(Contains(reload.err, "tls.cert")) << reload;

  // The old certificate still serves new connections and old ones.
  CtlResult stats = Ctl({"stats"}, certs_.ca());
  EXPECT_EQ(stats.exit_code, 0) << stats;
  EXPECT_TRUE((*before)->Request({{"type", "stats"}}).ok());
  EXPECT_TRUE(daemon_->running());
}

TEST_F(TlsTest, ReloadCannotTurnTlsOffOrOn) {
  StartDaemon();
  daemon_->SetConfig("store: { kind: memory }\n");
  CtlResult reload = Ctl({"reload"}, certs_.ca());
  EXPECT_EQ(reload.exit_code, 0) << reload;
  EXPECT_TRUE(Contains(daemon_->ReadStderr(), "turning tls on or off applies at the next start"))
      << daemon_->ReadStderr();
  EXPECT_EQ(Ctl({"stats"}, certs_.ca()).exit_code, 0);
  EXPECT_EQ(RunCtl(daemon_->address(), {"stats"}).exit_code, 3);
}

TEST_F(TlsTest, UnixSocketStaysPlain) {
  StartDaemon(false, "unix_socket: \"{dir}/pincer.sock\"\n");
  const std::string unix_addr = "unix:" + daemon_->dir() + "/pincer.sock";
  CtlResult plain = RunCtl(unix_addr, {"--json", "stats"});
  EXPECT_EQ(plain.exit_code, 0) << plain;
  // A client told to use TLS still speaks plain to a unix socket.
  CtlResult with_ca = RunCtl(unix_addr, {"--tls-ca", certs_.ca(), "stats"});
  EXPECT_EQ(with_ca.exit_code, 0) << with_ca;
}

TEST_F(TlsTest, PoolWorkersDialTheUnixSocket) {
  StartDaemon(false,
              "unix_socket: \"{dir}/pincer.sock\"\n"
              "pools:\n"
              "  - name: echo\n"
              "    command: [\"" +
                  kWorker + "\", \"--skill\", \"echo\", \"--\", \"cat\"]\n");
  ASSERT_TRUE(WaitFor([&] { return WorkerCount(certs_.ca()) == 1; })) << daemon_->ReadStderr();
  CtlResult r =
      Ctl({"--json", "submit", "--skill", "echo", "--payload", "7", "--wait"}, certs_.ca());
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.Json()["output"], 7) << r;
}

TEST_F(TlsTest, BadTlsConfigIsRefusedNamingTheKeyAndFile) {
  TempDir dir("tlscfg");
  struct Case {
    std::string body;
    std::vector<std::string> expected;
  };
  const std::string missing = dir.Join("missing.pem");
  const std::string big = dir.WriteFile("big.pem", std::string((4 << 20) + 1, 'A'));
  const std::vector<Case> cases = {
      {"tls: { key: " + certs_.server_key() + " }\n", {"tls.cert: missing"}},
      {"tls: { cert: " + missing + ", key: " + certs_.server_key() + " }\n",
       {"tls.cert", missing, "No such file"}},
      {"tls: { cert: " + certs_.server_cert() + ", key: " + certs_.client_key() + " }\n",
       {"tls.key", "does not match"}},
      {"tls: { cert: " + certs_.server_cert() + ", key: " + certs_.server_cert() + " }\n",
       {"tls.key", certs_.server_cert()}},
      {"tls: { cert: " + certs_.server_cert() + ", key: " + certs_.server_key() +
           ", client_ca: " + missing + " }\n",
       {"tls.client_ca", missing}},
      {"tls: { cert: " + certs_.server_cert() + ", key: " + certs_.server_key() +
           ", client_ca: " + certs_.server_key() + " }\n",
       {"tls.client_ca", "not a PEM file of CA certificates"}},
      {"tls: { cert: /dev/zero, key: " + certs_.server_key() + " }\n",
       {"tls.cert", "/dev/zero", "not a regular file"}},
      {"tls: { cert: " + certs_.server_cert() + ", key: " + dir.path() + " }\n",
       {"tls.key", "not a regular file"}},
      {"tls: { cert: " + big + ", key: " + certs_.server_key() + " }\n",
       {"tls.cert", "larger than 4 MiB"}},
      {"tls: { cert: " + certs_.server_cert() + ", key: " + certs_.server_key() + ", ca: x }\n",
       {"tls.ca", "unknown"}},
      {"tls: { cert: " + certs_.server_cert() + ", key: " + certs_.server_key() +
           " }\npools: [{ name: p, command: [cat] }]\n",
       {"tls: pools need unix_socket"}},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string path = dir.WriteFile("c" + std::to_string(i) + ".yaml", cases[i].body);
    ProcessResult r = RunProcess({kDaemon, "--check-config", path});
    EXPECT_NE(r.exit_code, 0) << cases[i].body;
    for (const std::string& part : cases[i].expected) {
      EXPECT_TRUE(Contains(r.err, part)) << cases[i].body << "\n" << r.err;
    }
  }
  const std::string good = dir.WriteFile("good.yaml", "tls: { cert: " + certs_.server_cert() +
                                                          ", key: " + certs_.server_key() +
                                                          ", client_ca: " + certs_.ca() + " }\n");
  ProcessResult ok = RunProcess({kDaemon, "--check-config", good});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST_F(TlsTest, ClientTlsFlagErrorsAreUsageErrors) {
  StartDaemon();
  CtlResult cert_only = RunCtl(
      daemon_->address(), {"--tls-ca", certs_.ca(), "--tls-cert", certs_.client_cert(), "stats"});
  EXPECT_EQ(cert_only.exit_code, 2) << cert_only;
  EXPECT_TRUE(Contains(cert_only.err, "--tls-key")) << cert_only;

  CtlResult missing_ca = RunCtl(daemon_->address(), {"--tls-ca", "/nonexistent/ca.pem", "stats"});
  EXPECT_EQ(missing_ca.exit_code, 2) << missing_ca;
  EXPECT_TRUE(Contains(missing_ca.err, "/nonexistent/ca.pem")) << missing_ca;

  ProcessResult worker = RunProcess(
      {kWorker, "--addr", daemon_->address(), "--tls-ca", "/nonexistent/ca.pem", "--", "cat"});
  EXPECT_EQ(worker.exit_code, 2) << worker.err;
  EXPECT_TRUE(Contains(worker.err, "/nonexistent/ca.pem")) << worker.err;
}

}  // namespace
}  // namespace pincer::test

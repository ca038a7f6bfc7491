#include "support/postgres_server.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "support/subprocess.h"

namespace pincer::test {
namespace {

constexpr const char* kPort = "5432";  // only names the socket file: no TCP

// The newest /usr/lib/postgresql/<version>/bin holding a server, or "".
std::string FindBinDir() {
  std::error_code ec;
  int best = -1;
  std::string found;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string bin = entry.path().string() + "/bin";
    if (!std::filesystem::exists(bin + "/postgres", ec) ||
        !std::filesystem::exists(bin + "/initdb", ec)) {
      continue;
    }
    const int version = std::atoi(entry.path().filename().c_str());
    if (version > best) {
      best = version;
      found = bin;
    }
  }
  return found;
}

std::string FindRunuser() {
  for (const char* p : {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

}  // namespace

bool PostgresServer::Available() { return !FindBinDir().empty(); }

PostgresServer::PostgresServer() : bin_(FindBinDir()) {}

PostgresServer::~PostgresServer() {
  if (running_) {
    Run({bin_ + "/pg_ctl", "-D", dir_.Join("data"), "-m", "immediate", "-w", "stop"}, nullptr);
  }
}

::testing::AssertionResult PostgresServer::Run(const std::vector<std::string>& argv,
                                               std::string* out) const {
  std::vector<std::string> full;
  if (::geteuid() == 0) {
    const std::string runuser = FindRunuser();
    if (runuser.empty()) return ::testing::AssertionFailure() << "runuser is not installed";
    full = {runuser, "-u", "postgres", "--"};
  }
  full.insert(full.end(), argv.begin(), argv.end());
  const ProcessResult r = RunProcess(full, "", {}, std::chrono::seconds(120));
  if (out) *out = r.out;
  if (r.exit_code != 0) {
    std::string command;
    for (const std::string& a : full) command += a + " ";
    return ::testing::AssertionFailure()
           << command << "exited " << r.exit_code << ":\n"
           << r.out << r.err << ReadFileOrEmpty(dir_.Join("server.log"));
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PostgresServer::Start() {
  if (bin_.empty()) return ::testing::AssertionFailure() << kMissing;
  if (!initialized_) {
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (!pw) return ::testing::AssertionFailure() << "no user postgres to run the server as";
      if (::chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        return ::testing::AssertionFailure() << "cannot chown " << dir_.path();
      }
    }
    if (auto r = Run({bin_ + "/initdb", "-D", dir_.Join("data"), "-U", "postgres", "-A", "trust",
                      "-E", "UTF8", "--locale=C", "--no-sync"},
                     nullptr);
        !r) {
      return r;
    }
    initialized_ = true;
  }
  // fsync off: a test never loses the machine, only the server process.
  const std::string options = "-k " + dir_.path() + " -p " + kPort +
                              " -c listen_addresses='' -c fsync=off -c full_page_writes=off";
  if (auto r = Run({bin_ + "/pg_ctl", "-D", dir_.Join("data"), "-l", dir_.Join("server.log"), "-o",
                    options, "-w", "-t", "60", "start"},
                   nullptr);
      !r) {
    return r;
  }
  running_ = true;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PostgresServer::Stop() {
  auto r = Run({bin_ + "/pg_ctl", "-D", dir_.Join("data"), "-m", "fast", "-w", "stop"}, nullptr);
  if (r) running_ = false;
  return r;
}

std::string PostgresServer::url() const {
  return "postgresql:///postgres?host=" + dir_.path() + "&port=" + kPort + "&user=postgres";
}

::testing::AssertionResult PostgresServer::Sql(const std::string& sql, std::string* out) const {
  return Run({bin_ + "/psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", dir_.path(), "-p",
              kPort, "-U", "postgres", "-d", "postgres", "-c", sql},
             out);
}

}  // namespace pincer::test

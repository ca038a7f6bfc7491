// pincer-bench: runs one workload against pincerd and the servers people
// would install instead, in one invocation, and prints one table.
//
//   pincer-bench [run] [--systems a,b] [--windows 1,256] [--warmup S] [--duration S]
//   pincer-bench queued-memory [--tasks N]   RSS of pincerd holding N queued tasks
//   pincer-bench idle-workers [--idle N]     the workload with N idle workers connected
//   pincer-bench takeover --postgres-url U [--kills N] [--queued N]
//                                            kill -9 of the leader to the first accepted
//                                            submit on the standby, N times
//
// Every server, worker and client is its own process: workers and clients
// are forked from this binary, servers are exec'd. Clients ship their
// latency histograms back through a pipe.
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "histogram.h"
#include "net_util.h"
#include "systems.h"

namespace pincer::bench {
namespace fs = std::filesystem;

const std::string& Payload() {
  static const std::string payload = [] {
    std::string p;
    for (int i = 0; i < 128; ++i) p.push_back(static_cast<char>('a' + i % 26));
    return p;
  }();
  return payload;
}

namespace {

struct Options {
  std::vector<std::string> systems = {
      "floor", "pincerd-memory", "pincerd-sqlite", "pincerd-memory-4c",
      "nats",  "gearman",        "redis",          "beanstalk"};
  std::vector<int> windows = {1, 256};
  double warmup_s = 1.0;
  double duration_s = 5.0;
  int workers = 4;
  int worker_capacity = 256;
  int idle_workers = 0;
  long tasks = 1'000'000;  // queued-memory
  int kills = 10;          // takeover
  long queued = 1000;      // takeover: tasks left queued for each new leader
  std::string pincerd;
  std::string work_dir;
  std::string postgres_url;  // pincerd-postgres: the database (--postgres-url)
};

struct RunResult {
  std::string system;
  int window = 0;
  int clients = 1;
  bool ok = false;
  std::string note;
  double tasks_per_s = 0;
  Histogram hist;
};

// ------------------------------------------------------------ processes

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::_Exit(127);
  }
  return pid;
}

template <typename F>
pid_t Fork(F&& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    body();
    std::_Exit(0);
  }
  return pid;
}

void Stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

bool Exists(const std::string& program) {
  if (program.find('/') != std::string::npos) return access(program.c_str(), X_OK) == 0;
  return std::system(("command -v " + program + " >/dev/null 2>&1").c_str()) == 0;
}

long RssBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      long kb;
      in >> kb;
      return kb * 1024;
    }
    in.ignore(1 << 20, '\n');
  }
  return -1;
}

// ------------------------------------------------------------- servers

// A running server under test; stops it when destroyed.
struct Server {
  pid_t pid = -1;
  int port = 0;
  std::string error;
  Server() = default;
  Server(Server&& o) noexcept : pid(o.pid), port(o.port), error(std::move(o.error)) { o.pid = -1; }
  Server& operator=(Server&& o) noexcept {
    if (this != &o) {
      Stop(pid);
      pid = o.pid;
      port = o.port;
      error = std::move(o.error);
      o.pid = -1;
    }
    return *this;
  }
  ~Server() { Stop(pid); }
};

bool WaitPort(int port) {
  const int fd = ConnectLocal(port, 10'000);
  if (fd < 0) return false;
  close(fd);
  return true;
}

struct PincerdSetup {
  std::string store = "memory";  // memory | sqlite | postgres
  long max_queued = 1'000'000;
  bool empty_store = true;  // postgres: drop pincerd's tables first
};

// Drops pincerd's tables and the lease's fence function, so a run starts
// from an empty store as the sqlite runs do. "" when done, else why not.
std::string DropPostgresTables(const std::string& url) {
  PGconn* conn = PQconnectdb(url.c_str());
  std::string error;
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
  } else {
    PGresult* r = PQexec(conn,
                         "SET client_min_messages = warning; "
                         "DROP TABLE IF EXISTS pincer_tasks, pincer_ids, pincer_lease, "
                         "pincer_schema; "
                         "DROP FUNCTION IF EXISTS pincer_fence");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) error = PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(conn);
  return error;
}

Server StartPincerd(const Options& o, const PincerdSetup& setup, const std::string& tag) {
  Server s;
  if (setup.store == "postgres" && setup.empty_store) {
    if (std::string error = DropPostgresTables(o.postgres_url); !error.empty()) {
      s.error = "cannot empty the database: " + error;
      return s;
    }
  }
  const std::string dir = o.work_dir + "/" + tag;
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string config = dir + "/pincer.yaml";
  {
    std::ofstream f(config);
    f << "listen: \"127.0.0.1:0\"\n"
      << "data_dir: \"" << dir << "/data\"\n";
    if (setup.store == "sqlite") {
      f << "store: { kind: sqlite, fsync: always }\n";
    } else if (setup.store == "postgres") {
      f << "store: { kind: postgres, url: \"" << o.postgres_url << "\" }\n";
    } else {
      f << "store: { kind: memory }\n";
    }
    // Idle bench workers send no heartbeats; a long interval keeps them.
    f << "heartbeat: { interval: 60s, misses: 3 }\n"
      << "limits: { max_queued: " << setup.max_queued << ", max_connections: 20000 }\n"
      << "log_level: warn\n";
  }
  const std::string addr_file = dir + "/address";
  s.pid =
      Spawn({o.pincerd, "--config", config, "--listen", "127.0.0.1:0", "--address-file", addr_file},
            dir + "/pincerd.log");
  for (int i = 0; i < 500 && s.port == 0; ++i) {
    std::ifstream in(addr_file);
    std::string addr;
    if (in >> addr) s.port = std::atoi(addr.substr(addr.rfind(':') + 1).c_str());
    if (s.port == 0) {
      if (waitpid(s.pid, nullptr, WNOHANG) == s.pid) {
        s.pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (s.port == 0) {
    std::ifstream log(dir + "/pincerd.log");
    std::stringstream ss;
    ss << log.rdbuf();
    std::string text = ss.str();
    s.error =
        "pincerd did not start" + (text.empty() ? "" : ": " + text.substr(0, text.find('\n')));
  }
  return s;
}

Server StartExternal(const Options& o, const std::string& system) {
  Server s;
  s.port = FreePort();
  const std::string port = std::to_string(s.port);
  const std::string log = o.work_dir + "/" + system + ".log";
  std::vector<std::string> argv;
  if (system == "nats") {
    argv = {"nats-server", "-a", "127.0.0.1", "-p", port};
  } else if (system == "gearman") {
    argv = {"gearmand", "--listen=127.0.0.1", "--port=" + port, "--log-file=none", "--http-port=0"};
  } else if (system == "redis") {
    argv = {"redis-server", "--bind", "127.0.0.1",    "--port", port,
            "--save",       "",       "--appendonly", "no"};
  } else if (system == "beanstalk") {
    argv = {"beanstalkd", "-l", "127.0.0.1", "-p", port};
  }
  if (!Exists(argv[0])) {
    s.error = argv[0] + " is not installed";
    return s;
  }
  s.pid = Spawn(argv, log);
  if (!WaitPort(s.port)) s.error = argv[0] + " did not start (see " + log + ")";
  return s;
}

Server StartRelay() {
  Server s;
  s.port = FreePort();
  const int port = s.port;
  s.pid = Fork([port] { RunRelayServer(port); });
  if (!WaitPort(s.port)) s.error = "relay did not start";
  return s;
}

// ------------------------------------------------------------- workload

// Client body: keeps `window` tasks in flight; after the warm-up, records
// the latency of every task that comes back until the measuring time ends.
void ClientMain(const SystemAdapter& a, const Endpoint& ep, int index, int window, const Options& o,
                int result_fd) {
  auto conn = a.client(ep, index);
  constexpr uint64_t kMask = (1u << 20) - 1;
  std::vector<uint64_t> sent_at(kMask + 1);
  std::vector<uint64_t> done;
  Histogram hist;
  uint64_t req = 1;
  int inflight = 0;
  const uint64_t start = NowNs();
  const uint64_t measure_from = start + static_cast<uint64_t>(o.warmup_s * 1e9);
  const uint64_t measure_to = measure_from + static_cast<uint64_t>(o.duration_s * 1e9);
  uint64_t now = start;
  while (now < measure_to) {
    for (; inflight < window; ++inflight, ++req) {
      sent_at[req & kMask] = now;
      conn->Submit(req);
    }
    done.clear();
    conn->Wait(done);
    now = NowNs();
    inflight -= static_cast<int>(done.size());
    if (now < measure_from) continue;
    for (uint64_t r : done) hist.Record(now - sent_at[r & kMask]);
  }
  (void)!write(result_fd, &hist, sizeof hist);
}

RunResult RunWorkload(const SystemAdapter& a, const Endpoint& ep, const Options& o, int window,
                      int clients) {
  RunResult r;
  r.window = window;
  r.clients = clients;
  std::vector<pid_t> workers;
  for (int i = 0; i < o.workers; ++i) {
    workers.push_back(Fork([&a, &ep, i] { a.worker(ep, i); }));
  }
  // Workers register before the first task, so nobody measures a queue
  // build-up that only exists because workers were still connecting.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<pid_t> client_pids;
  std::vector<int> fds;
  const int per_client = std::max(1, window / clients);
  for (int i = 0; i < clients; ++i) {
    int p[2];
    if (pipe(p) != 0) std::_Exit(1);
    client_pids.push_back(Fork([&, i, p] {
      close(p[0]);
      ClientMain(a, ep, i, per_client, o, p[1]);
    }));
    close(p[1]);
    fds.push_back(p[0]);
  }
  r.ok = true;
  for (std::size_t i = 0; i < fds.size(); ++i) {
    Histogram h;
    std::size_t got = 0;
    auto* bytes = reinterpret_cast<char*>(&h);
    while (got < sizeof h) {
      const ssize_t n = read(fds[i], bytes + got, sizeof h - got);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    close(fds[i]);
    int status = 0;
    waitpid(client_pids[i], &status, 0);
    if (got != sizeof h) {
      r.ok = false;
      r.note = "client " + std::to_string(i) + " failed (exit " +
               std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")";
      continue;
    }
    r.hist.Merge(h);
  }
  for (pid_t w : workers) Stop(w);
  r.tasks_per_s = static_cast<double>(r.hist.total()) / o.duration_s;
  if (r.hist.total() == 0 && r.ok) {
    r.ok = false;
    r.note = "no task came back";
  }
  return r;
}

// Opens `n` worker connections that say hello with a skill no task needs,
// so they sit idle in pincerd's registry. Closed when the vector goes.
std::vector<std::unique_ptr<Conn>> ConnectIdleWorkers(int port, int n) {
  std::vector<std::unique_ptr<Conn>> idle;
  for (int i = 0; i < n; ++i) {
    const int fd = ConnectLocal(port);
    if (fd < 0) break;
    auto c = std::make_unique<Conn>(fd);
    c->out().append(R"({"type":"hello","role":"worker","proto":1,"name":"idle","skills":["idle"]})"
                    "\n");
    c->Flush();
    idle.push_back(std::move(c));
  }
  for (auto& c : idle) {  // every hello answered: all are registered
    std::string_view line;
    while (!c->NextLine(line)) c->Fill();
  }
  return idle;
}

RunResult RunSystem(const Options& o, const std::string& system, int window) {
  RunResult r;
  std::optional<Server> server;
  SystemAdapter adapter{};
  int clients = 1;
  std::string label = system;
  Endpoint ep;
  ep.worker_capacity = o.worker_capacity;
  if (system == "floor") {
    adapter = RelayAdapter();
    server.emplace(StartRelay());
    label = "floor (line relay)";
  } else if (system.starts_with("pincerd")) {
    adapter = PincerdAdapter();
    PincerdSetup setup;
    if (system.find("sqlite") != std::string::npos) setup.store = "sqlite";
    if (system.find("postgres") != std::string::npos) {
      if (o.postgres_url.empty()) {
        r.system = system;
        r.note = "skipped: no --postgres-url";
        return r;
      }
      setup.store = "postgres";
    }
    if (system.ends_with("-4c")) clients = 4;
    server.emplace(StartPincerd(o, setup, system + "-w" + std::to_string(window)));
    label = "pincerd " + setup.store + (setup.store == "sqlite" ? " fsync=always" : "") +
            (clients > 1 ? ", 4 clients" : "");
  } else {
    if (system == "nats") adapter = NatsAdapter();
    if (system == "gearman") adapter = GearmanAdapter();
    if (system == "redis") adapter = RedisAdapter();
    if (system == "beanstalk") adapter = BeanstalkAdapter();
    if (!adapter.client) {
      r.system = system;
      r.note = "unknown system";
      return r;
    }
    server.emplace(StartExternal(o, system));
    label = adapter.name;
  }
  if (!server->error.empty()) {
    r.system = label;
    r.window = window;
    r.note = server->error;
    return r;
  }
  ep.port = server->port;
  std::vector<std::unique_ptr<Conn>> idle;
  if (o.idle_workers > 0 && system.starts_with("pincerd")) {
    idle = ConnectIdleWorkers(ep.port, o.idle_workers);
    label += ", " + std::to_string(idle.size()) + " idle workers";
  }
  r = RunWorkload(adapter, ep, o, window, clients);
  r.system = label;
  return r;
}

// ----------------------------------------------------------------- table

std::string Micros(uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, ns < 10'000'000 ? "%.1f" : "%.0f",
                static_cast<double>(ns) / 1000.0);
  return buf;
}

void PrintTable(const std::vector<RunResult>& results) {
  std::printf(
      "\n| system | window | tasks/s | p50 µs | p99 µs | max µs | tasks/s vs nats | p50 vs nats | "
      "p99 vs nats | tasks/s vs floor |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::map<int, const RunResult*> nats, floor;
  for (const auto& r : results) {
    if (!r.ok) continue;
    if (r.system == "nats-server") nats[r.window] = &r;
    if (r.system.starts_with("floor")) floor[r.window] = &r;
  }
  auto ratio = [](double a, double b) {
    if (b <= 0) return std::string("–");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2fx", a / b);
    return std::string(buf);
  };
  for (const auto& r : results) {
    if (!r.ok) {
      std::printf("| %s | %d | – | – | – | – | – | – | – | – |  (%s)\n", r.system.c_str(), r.window,
                  r.note.c_str());
      continue;
    }
    const RunResult* n = nats.count(r.window) ? nats[r.window] : nullptr;
    const RunResult* f = floor.count(r.window) ? floor[r.window] : nullptr;
    std::printf("| %s | %d | %.0f | %s | %s | %s | %s | %s | %s | %s |\n", r.system.c_str(),
                r.window, r.tasks_per_s, Micros(r.hist.Quantile(0.50)).c_str(),
                Micros(r.hist.Quantile(0.99)).c_str(), Micros(r.hist.max()).c_str(),
                n ? ratio(r.tasks_per_s, n->tasks_per_s).c_str() : "–",
                n ? ratio(r.hist.Quantile(0.5), n->hist.Quantile(0.5)).c_str() : "–",
                n ? ratio(r.hist.Quantile(0.99), n->hist.Quantile(0.99)).c_str() : "–",
                f ? ratio(r.tasks_per_s, f->tasks_per_s).c_str() : "–");
  }
  std::fflush(stdout);
}

// --------------------------------------------------------- scale figures

int QueuedMemory(const Options& o) {
  PincerdSetup setup;
  setup.max_queued = o.tasks + 1;
  Server s = StartPincerd(o, setup, "queued-memory");
  if (!s.error.empty()) {
    std::fprintf(stderr, "%s\n", s.error.c_str());
    return 1;
  }
  const int fd = ConnectLocal(s.port);
  Conn c(fd);
  c.out().append(R"({"type":"hello","role":"client","proto":1})"
                 "\n");
  c.Flush();
  std::string_view line;
  while (!c.NextLine(line)) c.Fill();
  const long before = RssBytes(s.pid);
  const uint64_t t0 = NowNs();
  long sent = 0, answered = 0;
  constexpr long kBatch = 2000;
  while (answered < o.tasks) {
    // Keep a bounded number of submits ahead of the answers.
    for (; sent < o.tasks && sent - answered < kBatch; ++sent) {
      c.out().append(R"({"type":"submit","req":)");
      c.out().append(std::to_string(sent));
      c.out().append(R"(,"skills":["nobody-has-this"],"payload":")");
      c.out().append(Payload());
      c.out().append("\"}\n");
    }
    c.Flush();
    c.Fill();
    while (c.NextLine(line)) {
      if (!line.starts_with(R"({"type":"ok")")) {
        std::fprintf(stderr, "refused: %.*s\n", static_cast<int>(line.size()), line.data());
        return 1;
      }
      ++answered;
    }
  }
  const double secs = static_cast<double>(NowNs() - t0) / 1e9;
  const long after = RssBytes(s.pid);
  std::printf("queued tasks: %ld (128-byte payloads), submitted in %.1f s (%.0f/s)\n", o.tasks,
              secs, static_cast<double>(o.tasks) / secs);
  std::printf("pincerd RSS: %.1f MiB before, %.1f MiB after: %.0f bytes per queued task\n",
              static_cast<double>(before) / (1 << 20), static_cast<double>(after) / (1 << 20),
              static_cast<double>(after - before) / static_cast<double>(o.tasks));
  return 0;
}

// ------------------------------------------------------------ takeover

// Sends `request` (hello first) on a new connection to 127.0.0.1:port and
// returns the answer lines, up to `answers` of them; empty when the
// connection is refused or closes first. Each read waits at most 2 s.
std::vector<std::string> Ask(int port, const std::string& request, std::size_t answers) {
  std::vector<std::string> lines;
  const int fd = ConnectLocal(port, 0);
  if (fd < 0) return lines;
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string out = R"({"type":"hello","role":"client","proto":1})"
                          "\n" +
                          request;
  if (send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
    close(fd);
    return lines;
  }
  std::string in;
  char buf[4096];
  while (lines.size() < answers) {
    const std::size_t nl = in.find('\n');
    if (nl != std::string::npos) {
      lines.push_back(in.substr(0, nl));
      in.erase(0, nl + 1);
      // An error instead of welcome (not_leader) is the last word.
      if (lines.size() == 1 && !lines[0].starts_with(R"({"type":"welcome")")) break;
      continue;
    }
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return lines;
}

// "leader", "standby" (not_leader) or "down" for the pincerd on `port`.
std::string Role(int port) {
  const std::vector<std::string> lines = Ask(port, "", 1);
  if (lines.empty()) return "down";
  if (lines[0].starts_with(R"({"type":"welcome")")) return "leader";
  if (lines[0].find(R"("not_leader")") != std::string::npos) return "standby";
  return "down";
}

// Two pincerd on one PostgreSQL with the default lease (4 s, renewed every
// 1 s). `kills` times: SIGKILL to the leader at a random point of its
// renewal cycle (0-1 s after the standby is seen), then a client that tries
// both addresses every 10 ms until a submit is accepted; the time from the
// kill to that `ok` is one takeover. The killed pincerd is started again
// and waited for as the standby, and the next kill is of the new leader.
// `queued` tasks (a skill no worker has) stay queued throughout, for each
// new leader to recover.
int Takeover(const Options& o, int kills, long queued) {
  if (o.postgres_url.empty() || kills < 1 || queued < 0) {
    std::fprintf(stderr, "takeover needs --postgres-url, --kills N >= 1 and --queued N >= 0\n");
    return 2;
  }
  PincerdSetup setup;
  setup.store = "postgres";
  std::vector<Server> s(2);
  std::vector<std::string> tags = {"takeover-a", "takeover-b"};
  auto start = [&](int i, int round) {
    s[i] = StartPincerd(o, setup, tags[i] + "-" + std::to_string(round));
    setup.empty_store = false;
    return s[i].error;
  };
  if (std::string e = start(0, 0); !e.empty()) {
    std::fprintf(stderr, "%s\n", e.c_str());
    return 1;
  }
  // A leads; fill the queue on it.
  for (long sent = 0; sent < queued;) {
    std::string batch;
    const long n = std::min(queued - sent, 1000L);
    for (long k = 0; k < n; ++k) {
      batch += R"({"type":"submit","req":)" + std::to_string(sent + k) +
               R"(,"skills":["nobody-has-this"],"payload":"queued"})"
               "\n";
    }
    const std::vector<std::string> answers = Ask(s[0].port, batch, static_cast<std::size_t>(n) + 1);
    long ok = 0;
    for (const auto& a : answers) ok += a.starts_with(R"({"type":"ok")");
    if (ok != n) {
      std::fprintf(stderr, "the queued tasks were not all accepted (%ld of %ld)\n", ok, n);
      return 1;
    }
    sent += n;
  }
  if (std::string e = start(1, 0); !e.empty()) {
    std::fprintf(stderr, "%s\n", e.c_str());
    return 1;
  }
  auto wait_role = [&](int i, const std::string& want) {
    for (int k = 0; k < 3000; ++k) {
      if (Role(s[i].port) == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  if (!wait_role(0, "leader") || !wait_role(1, "standby")) {
    std::fprintf(stderr, "no leader and standby (see %s)\n", o.work_dir.c_str());
    return 1;
  }
  std::printf(
      "takeover: 2 pincerd on PostgreSQL, default lease (4s) and renew (1s), "
      "%ld queued tasks, %d kills\n",
      queued, kills);
  std::printf(
      "| kill | killed | new leader | kill → first accepted submit ms |\n|---:|---|---|---:|\n");
  const std::string submit = R"({"type":"submit","req":1,"skills":["bench"],"payload":"after"})"
                             "\n";
  std::vector<double> ms;
  int leader = 0;
  std::mt19937 random(std::random_device{}());
  for (int round = 1; round <= kills; ++round) {
    const int standby = 1 - leader;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 999)(random)));
    kill(s[leader].pid, SIGKILL);
    waitpid(s[leader].pid, nullptr, 0);
    const uint64_t killed = NowNs();
    s[leader].pid = -1;
    int served = -1;
    const uint64_t give_up = killed + 60'000'000'000ull;
    while (served < 0 && NowNs() < give_up) {
      for (int i : {leader, standby}) {
        const std::vector<std::string> a = Ask(s[i].port, submit, 2);
        if (a.size() == 2 && a[1].starts_with(R"({"type":"ok")")) {
          served = i;
          break;
        }
      }
      if (served < 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (served < 0) {
      std::fprintf(stderr, "kill %d: no submit accepted within 60 s (see %s)\n", round,
                   o.work_dir.c_str());
      return 1;
    }
    const double took = static_cast<double>(NowNs() - killed) / 1e6;
    ms.push_back(took);
    std::printf("| %d | %s | %s | %.0f |\n", round, tags[leader].c_str() + 9,
                tags[served].c_str() + 9, took);
    std::fflush(stdout);
    // The killed one comes back as the standby.
    if (std::string e = start(leader, round); !e.empty()) {
      std::fprintf(stderr, "restart: %s\n", e.c_str());
      return 1;
    }
    if (!wait_role(leader, "standby")) {
      std::fprintf(stderr, "the restarted pincerd is not a standby (see %s)\n", o.work_dir.c_str());
      return 1;
    }
    leader = served;
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted.size() % 2
                            ? sorted[sorted.size() / 2]
                            : (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]) / 2;
  std::printf("takeover over %zu kills: min %.0f ms, median %.0f ms, max %.0f ms\n", ms.size(),
              sorted.front(), median, sorted.back());
  return 0;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

void Usage() {
  std::printf(
      "usage: pincer-bench [run|queued-memory|idle-workers|takeover] [options]\n"
      "  --systems LIST     comma-separated, from: floor,pincerd-memory,pincerd-sqlite,\n"
      "                     pincerd-memory-4c,nats,gearman,redis,beanstalk, and\n"
      "                     pincerd-postgres with --postgres-url (default: all)\n"
      "  --windows LIST     tasks in flight per run (default 1,256)\n"
      "  --warmup S         seconds before measuring (default 1)\n"
      "  --duration S       seconds measured (default 5)\n"
      "  --workers N        no-op worker processes (default 4)\n"
      "  --capacity N       pincerd worker capacity (default 256)\n"
      "  --idle N           idle-workers: idle worker connections (default 5000)\n"
      "  --tasks N          queued-memory: tasks to queue (default 1000000)\n"
      "  --kills N          takeover: leaders killed with SIGKILL (default 10)\n"
      "  --queued N         takeover: tasks queued for each new leader to recover\n"
      "                     (default 1000)\n"
      "  --pincerd PATH     pincerd binary (default: next to pincer-bench)\n"
      "  --postgres-url U   the database of pincerd-postgres (its tables are dropped first)\n"
      "exit status: 0 when every pincerd and floor row ran (a peer that is not\n"
      "installed or does not start gets a row saying so), 1 otherwise, 2 for bad usage\n");
}

}  // namespace

int Main(int argc, char** argv) {
  Options o;
  std::string mode = "run";
  int first = 1;
  if (argc > 1 && argv[1][0] != '-') {
    mode = argv[1];
    first = 2;
  }
  if (mode == "idle-workers") {
    o.idle_workers = 5000;
    o.systems = {"pincerd-memory"};
    o.windows = {256};
  }
  bool systems_given = mode != "run";
  for (int i = first; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        Usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--systems") {
      o.systems = Split(next());
      systems_given = true;
    } else if (a == "--windows") {
      o.windows.clear();
      for (const auto& w : Split(next())) o.windows.push_back(std::atoi(w.c_str()));
    } else if (a == "--warmup")
      o.warmup_s = std::atof(next().c_str());
    else if (a == "--duration")
      o.duration_s = std::atof(next().c_str());
    else if (a == "--workers")
      o.workers = std::atoi(next().c_str());
    else if (a == "--capacity")
      o.worker_capacity = std::atoi(next().c_str());
    else if (a == "--idle")
      o.idle_workers = std::atoi(next().c_str());
    else if (a == "--tasks")
      o.tasks = std::atol(next().c_str());
    else if (a == "--kills")
      o.kills = std::atoi(next().c_str());
    else if (a == "--queued")
      o.queued = std::atol(next().c_str());
    else if (a == "--pincerd")
      o.pincerd = next();
    else if (a == "--postgres-url")
      o.postgres_url = next();
    else if (a == "--help" || a == "-h") {
      Usage();
      return 0;
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      Usage();
      return 2;
    }
  }
  // With a database, the default table has a postgres row after sqlite's.
  if (!systems_given && !o.postgres_url.empty()) {
    o.systems.insert(o.systems.begin() + 3, "pincerd-postgres");
  }
  if (o.pincerd.empty())
    o.pincerd = (fs::read_symlink("/proc/self/exe").parent_path() / "pincerd").string();
  // Thousands of idle connections need file descriptors; children inherit.
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  signal(SIGPIPE, SIG_IGN);
  char tmpl[] = "/tmp/pincer-bench.XXXXXX";
  o.work_dir = mkdtemp(tmpl);

  int rc = 0;
  if (mode == "queued-memory") {
    rc = QueuedMemory(o);
  } else if (mode == "takeover") {
    rc = Takeover(o, o.kills, o.queued);
  } else if (mode == "run" || mode == "idle-workers") {
    std::vector<RunResult> results;
    // idle-workers compares, in one run, the workload without and with the
    // idle connections.
    std::vector<int> idle_counts = {o.idle_workers};
    if (mode == "idle-workers") idle_counts = {0, o.idle_workers};
    for (int idle : idle_counts) {
      Options run = o;
      run.idle_workers = idle;
      for (int window : o.windows) {
        for (const auto& system : o.systems) {
          std::fprintf(stderr, "running %s at window %d...\n", system.c_str(), window);
          results.push_back(RunSystem(run, system, window));
        }
      }
    }
    std::printf(
        "workload: %d no-op workers, %s, %zu-byte payloads, %.0fs warm-up, %.0fs measured\n",
        o.workers, "1 client process (4 where marked) keeping `window` tasks in flight",
        Payload().size(), o.warmup_s, o.duration_s);
    PrintTable(results);
    // A peer that is missing or does not start is named in its row; only a
    // row of pincer's own (pincerd, the floor) that fails fails the run.
    for (const auto& r : results) {
      const bool ours = r.system.starts_with("pincerd") || r.system.starts_with("floor");
      if (!r.ok && ours) rc = 1;
    }
  } else {
    Usage();
    rc = 2;
  }
  fs::remove_all(o.work_dir);
  return rc;
}

}  // namespace pincer::bench

int main(int argc, char** argv) { return pincer::bench::Main(argc, argv); }

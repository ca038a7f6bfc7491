#include "support/chromium.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

extern char** environ;

namespace pincer::test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string DecodeBase64(const std::string& in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  int bits = 0;
  uint32_t acc = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) continue;  // padding, line breaks
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

}  // namespace

std::string Chromium::Binary() {
  const char* env = std::getenv("PINCER_CHROMIUM");
  return env && *env ? env : "/usr/bin/chromium";
}

std::unique_ptr<Chromium> Chromium::Launch(std::string& error) {
  std::unique_ptr<Chromium> c(new Chromium());
  if (::access(Binary().c_str(), X_OK) != 0) {
    error = Binary() + " not found: install the Debian package chromium (scripts/deps)";
    return nullptr;
  }
  int to[2], from[2];
  if (::pipe2(to, O_CLOEXEC) != 0 || ::pipe2(from, O_CLOEXEC) != 0) {
    error = "pipe failed";
    return nullptr;
  }
  const std::vector<std::string> args = {
      Binary(),
      "--headless",
      // Tests run as root in CI, where Chromium's sandbox cannot start; the
      // page is the test's own.
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--remote-debugging-pipe",
      "--user-data-dir=" + c->dir_.Join("profile"),
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-extensions",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--hide-scrollbars",
      "--window-size=1400,1000",
      "about:blank",
  };
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::string err_path = c->dir_.Join("stderr");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  // dup2 clears close-on-exec on the new descriptors only.
  posix_spawn_file_actions_adddup2(&actions, to[0], 3);
  posix_spawn_file_actions_adddup2(&actions, from[1], 4);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  const int rc = ::posix_spawn(&c->pid_, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(to[0]);
  ::close(from[1]);
  c->to_browser_ = to[1];
  c->from_browser_ = from[0];
  if (rc != 0) {
    error = "cannot start " + Binary();
    c->pid_ = -1;
    return nullptr;
  }
  // The first answer says the browser is up.
  if (!c->Call("Browser.getVersion", json::object(), std::chrono::seconds(60))) {
    error = "chromium did not answer on its DevTools pipe: " + c->log();
    return nullptr;
  }
  return c;
}

Chromium::~Chromium() {
  if (pid_ > 0) {
    if (to_browser_ >= 0) {
      const std::string close = R"({"id":999999,"method":"Browser.close"})" + std::string(1, '\0');
      (void)!::write(to_browser_, close.data(), close.size());
    }
    // Give it the time a close takes, then make sure.
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        ::kill(-pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      ::poll(nullptr, 0, 20);
    }
    ::kill(-pid_, SIGKILL);  // its helpers, if any stayed
  }
  if (to_browser_ >= 0) ::close(to_browser_);
  if (from_browser_ >= 0) ::close(from_browser_);
}

std::optional<json> Chromium::Read(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto nul = buffered_.find('\0'); nul != std::string::npos) {
      json msg = json::parse(buffered_.substr(0, nul), nullptr, false);
      buffered_.erase(0, nul + 1);
      if (msg.is_object()) return msg;
      continue;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{from_browser_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[65536];
    const ssize_t n = ::read(from_browser_, buf, sizeof buf);
    if (n <= 0) return std::nullopt;  // the browser is gone
    buffered_.append(buf, static_cast<std::size_t>(n));
  }
}

bool Chromium::NoteEvent(const json& event) {
  const std::string method = event.value("method", "");
  const json params = event.value("params", json::object());
  if (method == "Runtime.consoleAPICalled") {
    std::string line = "console." + params.value("type", "") + ":";
    for (const auto& arg : params.value("args", json::array())) {
      line += " " + (arg.contains("value") ? arg["value"].dump() : arg.value("description", ""));
    }
    log_.push_back(line);
  } else if (method == "Runtime.exceptionThrown") {
    log_.push_back("exception: " + params["exceptionDetails"].dump());
  } else if (method == "Page.loadEventFired") {
    return true;
  }
  return false;
}

std::optional<json> Chromium::Call(const std::string& method, json params,
                                   std::chrono::milliseconds timeout) {
  const int64_t id = next_id_++;
  json msg = {{"id", id}, {"method", method}, {"params", std::move(params)}};
  if (!session_.empty()) msg["sessionId"] = session_;
  const std::string text = msg.dump() + std::string(1, '\0');
  if (::write(to_browser_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return std::nullopt;
  }
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto answer =
        Read(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!answer) return std::nullopt;
    if (!answer->contains("id")) {
      if (NoteEvent(*answer)) loaded_ = true;
      continue;
    }
    if ((*answer)["id"] != id) continue;
    if (answer->contains("error")) {
      log_.push_back(method + " failed: " + (*answer)["error"].dump());
      return std::nullopt;
    }
    return answer->value("result", json::object());
  }
  return std::nullopt;
}

bool Chromium::Open(const std::string& url) {
  session_.clear();
  auto target = Call("Target.createTarget", {{"url", "about:blank"}});
  if (!target) return false;
  auto attached =
      Call("Target.attachToTarget", {{"targetId", (*target)["targetId"]}, {"flatten", true}});
  if (!attached) return false;
  session_ = (*attached)["sessionId"].get<std::string>();
  if (!Call("Runtime.enable", json::object()) || !Call("Page.enable", json::object())) return false;
  loaded_ = false;
  if (!Call("Page.navigate", {{"url", url}})) return false;
  // The load event: the page and its scripts (deferred ones included).
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!loaded_ && Clock::now() < deadline) {
    auto event = Read(std::chrono::seconds(1));
    if (event && !event->contains("id") && NoteEvent(*event)) loaded_ = true;
  }
  return loaded_;
}

std::optional<json> Chromium::Evaluate(const std::string& expression) {
  auto r = Call("Runtime.evaluate",
                {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
  if (!r) return std::nullopt;
  if (r->contains("exceptionDetails")) {
    log_.push_back("evaluate '" + expression + "' threw: " + (*r)["exceptionDetails"].dump());
    return std::nullopt;
  }
  return (*r)["result"].value("value", json(nullptr));
}

bool Chromium::Screenshot(const std::string& path, int width) {
  auto height = Evaluate("document.documentElement.scrollHeight");
  if (!height || !height->is_number()) return false;
  if (!Call("Emulation.setDeviceMetricsOverride", {{"width", width},
                                                   {"height", height->get<int>()},
                                                   {"deviceScaleFactor", 1},
                                                   {"mobile", false}})) {
    return false;
  }
  auto shot = Call("Page.captureScreenshot", {{"format", "png"}});
  if (!shot || !shot->contains("data")) return false;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << DecodeBase64((*shot)["data"].get<std::string>());
  return static_cast<bool>(out);
}

std::string Chromium::log() const {
  std::string s;
  for (const auto& line : log_) s += line + "\n";
  s += "--- chromium stderr:\n" + ReadFileOrEmpty(dir_.Join("stderr"));
  return s;
}

}  // namespace pincer::test

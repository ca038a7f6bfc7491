// Headless Chromium (Debian's `chromium`) for the dashboard's browser
// tests, driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: JSON messages, each ended by a NUL byte, on
// fds 3 and 4): no WebSocket, no port to find.
//
//   auto browser = Chromium::Launch();
//   ASSERT_TRUE(browser->Open("http://127.0.0.1:9464/"));
//   ASSERT_TRUE(WaitFor([&] { return browser->Evaluate("!!document.querySelector('td')") == true;
//   }));
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace pincer::test {

class Chromium {
 public:
  // The browser binary: $PINCER_CHROMIUM, else /usr/bin/chromium.
  static std::string Binary();
  // Starts the browser, headless, with a profile of its own; nullptr and
  // `error` set when it cannot.
  static std::unique_ptr<Chromium> Launch(std::string& error);
  // Closes the browser (and kills it if it does not go).
  ~Chromium();
  Chromium(const Chromium&) = delete;
  Chromium& operator=(const Chromium&) = delete;

  // Opens `url` in a new tab and waits for its load event.
  bool Open(const std::string& url);
  // The value of a JavaScript expression in the tab (promises awaited);
  // nullopt when it threw (see log()) or the browser did not answer.
  std::optional<nlohmann::json> Evaluate(const std::string& expression);
  // A PNG of the whole page, `width` CSS pixels wide, written to `path`.
  bool Screenshot(const std::string& path, int width = 1400);
  // What the page logged and threw, and the browser's stderr: for failures.
  std::string log() const;

 private:
  Chromium() = default;
  // Sends a command (to the tab once attached) and waits for its answer:
  // the `result`, or nullopt on an error answer or silence.
  std::optional<nlohmann::json> Call(const std::string& method, nlohmann::json params,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // The next message from the browser, or nullopt after `timeout`.
  std::optional<nlohmann::json> Read(std::chrono::milliseconds timeout);
  // Notes console output and exceptions; true for the tab's load event.
  bool NoteEvent(const nlohmann::json& event);

  TempDir dir_{"chromium"};
  pid_t pid_ = -1;
  int to_browser_ = -1;
  int from_browser_ = -1;
  std::string buffered_;  // read, not yet split into messages
  int64_t next_id_ = 1;
  std::string session_;  // the attached tab's session
  bool loaded_ = false;
  std::vector<std::string> log_;
};

}  // namespace pincer::test

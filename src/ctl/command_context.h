// What every pincerctl command gets: the global flags and the process's
// streams and clock, passed in so commands never reach for globals.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "client/client.h"

namespace pincer::ctl {

struct GlobalOptions {
  std::string addr = "127.0.0.1:7878";
  std::string token;
  client::TlsOptions tls;  // --tls-ca, --tls-cert, --tls-key
  bool json = false;
};

struct CommandContext {
  GlobalOptions options;
  std::istream* in = nullptr;            // for --payload-file - and --batch -
  int in_fd = -1;                        // stdin for `top`'s keys (q quits); -1 = none
  std::ostream* out = nullptr;           // results only
  std::ostream* err = nullptr;           // diagnostics and progress
  bool out_is_terminal = false;          // `top` redraws in place only on a terminal
  bool err_is_terminal = false;          // progress lines only go to a terminal
  std::function<std::int64_t()> now_ms;  // unix ms, for ages in tables
};

// How long a plain request may take once connected; `wait` has no limit.
inline constexpr client::Duration kRequestTimeout{60000};
inline constexpr client::Duration kConnectTimeout{5000};
// With several addresses (--addr A,B): long enough to ride out a takeover,
// which takes about 5 s (docs/high-availability.md).
inline constexpr client::Duration kFailoverConnectTimeout{10000};

// Connects and says hello as a client, with the context's address and token.
client::Result<std::unique_ptr<client::Client>> DialDaemon(const CommandContext& context);

// Prints "pincerctl: <what went wrong>" on stderr and returns the exit code
// the error maps to (ctl/exit_code.h).
int ReportError(const CommandContext& context, const client::Error& error);

// Writes one JSON value and a newline on stdout.
void PrintJson(const CommandContext& context, const nlohmann::json& value);

// Reads a whole file, or stdin when `path` is "-". Errors name the path.
client::Result<std::string> ReadInput(const CommandContext& context, const std::string& path);

}  // namespace pincer::ctl

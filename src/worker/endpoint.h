// Where pincer-worker dials: "HOST:PORT", "[V6]:PORT" or "unix:/path". Pure.
#pragma once

#include <charconv>
#include <optional>
#include <string>
#include <string_view>

namespace pincer::worker {

struct Endpoint {
  bool is_unix = false;
  std::string host;  // TCP: name or literal, without IPv6 brackets
  std::string port;  // TCP: decimal 1..65535
  std::string path;  // Unix: filesystem path of the socket

  std::string ToString() const;
};

// nullopt when `text` is none of the accepted forms.
std::optional<Endpoint> ParseEndpoint(std::string_view text);

}  // namespace pincer::worker

// Parsing of the addresses clients dial: "HOST:PORT", "[V6]:PORT" or
// "unix:/path/to/socket". Pure; no sockets.
#pragma once

#include <string>

#include "client/result.h"

namespace pincer::client {

struct Address {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;  // kTcp: name or literal, without IPv6 brackets
  std::string port;  // kTcp: decimal 1..65535
  std::string path;  // kUnix: filesystem path of the socket

  std::string ToString() const;
};

// Errors carry kind kInvalidArgument and code "bad_address".
Result<Address> ParseAddress(const std::string& text);

}  // namespace pincer::client

// Parsing of the addresses clients dial: "HOST:PORT", "[V6]:PORT" or
// "unix:/path/to/socket", and lists of them ("A,B": a leader and its
// standbys, docs/high-availability.md). Pure; no sockets.
#pragma once

#include <string>
#include <vector>

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

// "A,B,C": one or more addresses separated by commas (spaces around each
// are ignored). Errors as ParseAddress's, naming the bad element; an empty
// element is an error too.
Result<std::vector<Address>> ParseAddressList(const std::string& text);

}  // namespace pincer::client

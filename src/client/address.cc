#include "client/address.h"

#include <cctype>

namespace pincer::client {
namespace {

Error BadAddress(const std::string& text, const std::string& why) {
  return Error{ErrorKind::kInvalidArgument, "bad_address",
               "bad address '" + text + "': " + why + " (expected HOST:PORT or unix:/path)"};
}

bool ValidPort(const std::string& port) {
  if (port.empty() || port.size() > 5) return false;
  for (char c : port) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  const int value = std::stoi(port);
  return value >= 1 && value <= 65535;
}

}  // namespace

std::string Address::ToString() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port;
  return host + ":" + port;
}

Result<Address> ParseAddress(const std::string& text) {
  Address address;
  static constexpr std::string_view kUnixPrefix = "unix:";
  if (text.rfind(kUnixPrefix, 0) == 0) {
    address.kind = Address::Kind::kUnix;
    address.path = text.substr(kUnixPrefix.size());
    if (address.path.empty()) return BadAddress(text, "empty socket path");
    return address;
  }
  std::string::size_type colon;
  if (!text.empty() && text.front() == '[') {
    // Bracketed IPv6 literal: the port follows "]:".
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return BadAddress(text, "unterminated IPv6 literal or missing port");
    }
    address.host = text.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string::npos) return BadAddress(text, "missing port");
    address.host = text.substr(0, colon);
    if (address.host.find(':') != std::string::npos) {
      return BadAddress(text, "IPv6 literals need brackets");
    }
  }
  address.port = text.substr(colon + 1);
  if (address.host.empty()) return BadAddress(text, "missing host");
  if (!ValidPort(address.port)) return BadAddress(text, "port must be 1..65535");
  return address;
}

Result<std::vector<Address>> ParseAddressList(const std::string& text) {
  std::vector<Address> list;
  std::string::size_type start = 0;
  while (true) {
    const std::string::size_type comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? comma : comma - start);
    const auto first = item.find_first_not_of(" \t");
    const auto last = item.find_last_not_of(" \t");
    item = first == std::string::npos ? "" : item.substr(first, last - first + 1);
    if (item.empty()) return BadAddress(text, "an empty address in the list");
    Result<Address> address = ParseAddress(item);
    if (!address.ok()) return address.error();
    list.push_back(std::move(address).value());
    if (comma == std::string::npos) return list;
    start = comma + 1;
  }
}

}  // namespace pincer::client

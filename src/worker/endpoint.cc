#include "worker/endpoint.h"

namespace pincer::worker {

std::string Endpoint::ToString() const {
  if (is_unix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port;
  return host + ":" + port;
}

std::optional<Endpoint> ParseEndpoint(std::string_view text) {
  Endpoint ep;
  constexpr std::string_view kUnix = "unix:";
  if (text.substr(0, kUnix.size()) == kUnix) {
    ep.is_unix = true;
    ep.path = std::string(text.substr(kUnix.size()));
    if (ep.path.empty()) return std::nullopt;
    return ep;
  }
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return std::nullopt;  // a bare IPv6 literal is ambiguous without brackets
  }
  if (host.empty() || port.empty()) return std::nullopt;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
    return std::nullopt;
  }
  ep.host = std::string(host);
  ep.port = std::string(port);
  return ep;
}

}  // namespace pincer::worker

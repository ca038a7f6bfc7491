#include "ctl/command_context.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "ctl/exit_code.h"
#include "ctl/format.h"

namespace pincer::ctl {

client::Result<std::unique_ptr<client::Client>> DialDaemon(const CommandContext& context) {
  client::ConnectOptions options;
  options.timeout = kConnectTimeout;
  return client::Client::Connect(context.options.addr, "client", context.options.token,
                                 nlohmann::json::object(), options);
}

int ReportError(const CommandContext& context, const client::Error& error) {
  std::string text;
  switch (error.kind) {
    case client::ErrorKind::kServer:
      text = error.code + ": " + error.message;
      if (error.code == "unauthorized") text += " (check --token or PINCER_TOKEN)";
      break;
    case client::ErrorKind::kConnect:
      text = error.message + " (is pincerd running? set --addr or PINCER_ADDR)";
      break;
    default:
      text = error.message;
  }
  *context.err << "pincerctl: " << text << "\n";
  return ExitCodeFor(error);
}

void PrintJson(const CommandContext& context, const nlohmann::json& value) {
  *context.out << DumpJson(value) << "\n";
}

client::Result<std::string> ReadInput(const CommandContext& context, const std::string& path) {
  if (path == "-") {
    std::ostringstream text;
    text << context.in->rdbuf();
    return text.str();
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return client::Error{client::ErrorKind::kInvalidArgument, "invalid_request",
                         "cannot read " + path + ": " + std::strerror(errno)};
  }
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

}  // namespace pincer::ctl

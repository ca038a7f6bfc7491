#include "ctl/command_context.h"

#include <iostream>
#include <optional>
#include <sstream>

#include "common/read_file.h"
#include "ctl/exit_code.h"
#include "ctl/format.h"

namespace pincer::ctl {

client::Result<std::unique_ptr<client::Client>> DialDaemon(const CommandContext& context) {
  client::ConnectOptions options;
  const bool several = context.options.addr.find(',') != std::string::npos;
  options.timeout = several ? kFailoverConnectTimeout : kConnectTimeout;
  options.tls = context.options.tls;
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
      text = error.message + (error.code == "tls_failed"
                                  ? " (check --tls-ca, --tls-cert and --tls-key)"
                                  : " (is pincerd running? set --addr or PINCER_ADDR)");
      break;
    default:
      text = error.message;
      // A TLS alert as the daemon hangs up: it refused our certificate.
      if (error.kind == client::ErrorKind::kClosed &&
          error.message.find(" alert ") != std::string::npos) {
        text += " (check --tls-cert and --tls-key)";
      }
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
  std::string error;
  std::optional<std::string> text = ReadFile(path, &error);
  if (!text) {
    return client::Error{client::ErrorKind::kInvalidArgument, "invalid_request",
                         "cannot read " + path + ": " + error};
  }
  return std::move(*text);
}

}  // namespace pincer::ctl

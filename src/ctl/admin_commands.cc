// Commands that change the daemon's state: cancel, drain, reload. Their
// --json output is the daemon's `ok` answer without type and req.

#include <iostream>

#include "ctl/commands.h"
#include "ctl/exit_code.h"
#include "ctl/render.h"

namespace pincer::ctl {
namespace {

// Sends `request`; prints the answer (--json) or `human(answer)`.
template <typename Human>
int Administer(const CommandContext& context, nlohmann::json request, Human human) {
  auto client = DialDaemon(context);
  if (!client.ok()) return ReportError(context, client.error());
  client::Result<nlohmann::json> answer = (*client)->Request(std::move(request), kRequestTimeout);
  if (!answer.ok()) return ReportError(context, answer.error());
  if (context.options.json) {
    PrintJson(context, WithoutEnvelope(*answer));
  } else {
    *context.out << human(*answer) << "\n";
  }
  return kExitOk;
}

}  // namespace

int RunCancel(const CommandContext& context, const std::string& id) {
  return Administer(context, {{"type", "cancel"}, {"id", id}}, [&](const nlohmann::json& answer) {
    const std::string state = Field(answer, "state");
    return (answer.contains("id") ? Field(answer, "id") : id) + " " +
           (state == "-" ? "cancelled" : state);
  });
}

int RunRetry(const CommandContext& context, const std::string& id) {
  return Administer(context, {{"type", "retry"}, {"id", id}}, [&](const nlohmann::json& answer) {
    const std::string state = Field(answer, "state");
    return (answer.contains("id") ? Field(answer, "id") : id) + " " +
           (state == "-" ? "queued" : state);
  });
}

int RunDrain(const CommandContext& context, const std::string& worker) {
  return Administer(context, {{"type", "drain"}, {"worker", worker}},
                    [&](const nlohmann::json& answer) {
                      const std::string state = Field(answer, "state");
                      return (answer.contains("worker") ? Field(answer, "worker") : worker) + " " +
                             (state == "-" ? "draining" : state);
                    });
}

int RunReload(const CommandContext& context) {
  return Administer(context, {{"type", "reload"}},
                    [](const nlohmann::json&) { return std::string("config reloaded"); });
}

}  // namespace pincer::ctl

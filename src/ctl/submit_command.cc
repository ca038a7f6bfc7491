// `pincerctl submit` (one task, optionally waiting for its end).

#include <iostream>

#include "ctl/commands.h"
#include "ctl/exit_code.h"
#include "ctl/render.h"

namespace pincer::ctl {

int PrintEnd(const CommandContext& context, const nlohmann::json& end) {
  if (context.options.json) {
    PrintJson(context, WithoutEnvelope(end));
  } else {
    *context.out << RenderEnd(end);
  }
  return ExitCodeForState(Field(end, "state"));
}

client::Client::ProgressFn FollowProgress(const CommandContext& context) {
  return [&context](const nlohmann::json& progress) {
    const auto data = progress.find("data");
    *context.err << "progress " << Field(progress, "id") << ": "
                 << DumpJson(data == progress.end() ? nlohmann::json() : *data) << "\n";
    context.err->flush();
  };
}

int RunSubmit(const CommandContext& context, const SubmitFlags& flags) {
  if (flags.batch_file) return RunBatchSubmit(context, *flags.batch_file);

  SubmitSpec spec = flags.spec;
  if (flags.payload) {
    client::Result<nlohmann::json> payload = ParsePayload(*flags.payload, "--payload");
    if (!payload.ok()) return ReportError(context, payload.error());
    spec.payload = std::move(payload).value();
  } else if (flags.payload_file) {
    client::Result<std::string> text = ReadInput(context, *flags.payload_file);
    if (!text.ok()) return ReportError(context, text.error());
    const std::string source =
        *flags.payload_file == "-" ? "stdin" : "payload file " + *flags.payload_file;
    client::Result<nlohmann::json> payload = ParsePayload(*text, source);
    if (!payload.ok()) return ReportError(context, payload.error());
    spec.payload = std::move(payload).value();
  } else if (flags.text) {
    client::Result<nlohmann::json> payload = TextPayload(*flags.text, "--text");
    if (!payload.ok()) return ReportError(context, payload.error());
    spec.payload = std::move(payload).value();
  } else if (flags.text_file) {
    client::Result<std::string> text = ReadInput(context, *flags.text_file);
    if (!text.ok()) return ReportError(context, text.error());
    const std::string source = *flags.text_file == "-" ? "stdin" : "text file " + *flags.text_file;
    client::Result<nlohmann::json> payload = TextPayload(std::move(text).value(), source);
    if (!payload.ok()) return ReportError(context, payload.error());
    spec.payload = std::move(payload).value();
  }
  client::Result<nlohmann::json> request = BuildSubmit(spec);
  if (!request.ok()) return ReportError(context, request.error());

  auto client = DialDaemon(context);
  if (!client.ok()) return ReportError(context, client.error());
  client::Result<std::int64_t> req = (*client)->SendRequest(std::move(request).value());
  if (!req.ok()) return ReportError(context, req.error());
  client::Result<nlohmann::json> accepted = (*client)->AwaitReply(*req, kRequestTimeout);
  if (!accepted.ok()) return ReportError(context, accepted.error());
  const std::string id = Field(*accepted, "id");
  // What pincerd says about an accepted task goes to stderr, not in the way
  // of the id on stdout.
  const std::string warning = accepted->value("warning", std::string());
  if (!warning.empty()) *context.err << "pincerctl: warning: " << warning << "\n";
  if (accepted->value("existing", false)) {
    *context.err << "pincerctl: key '" << spec.key.value_or("") << "' is task " << id
                 << ", submitted before with the same payload: nothing new was created\n";
  }

  if (!spec.wait) {
    if (context.options.json) {
      nlohmann::json out = {{"id", id}};
      if (accepted->contains("existing")) out["existing"] = (*accepted)["existing"];
      if (!warning.empty()) out["warning"] = warning;
      PrintJson(context, out);
    } else {
      *context.out << id << "\n";
    }
    return kExitOk;
  }

  if (context.err_is_terminal) *context.err << "submitted " << id << ", waiting for it to end\n";
  // The task is durable once accepted, so losing the connection now loses
  // only this wait, not the task: say how to pick it up again.
  client::Result<nlohmann::json> end = (*client)->AwaitReply(
      *req, client::kNoTimeout, flags.follow ? FollowProgress(context) : nullptr);
  if (!end.ok()) {
    const int code = ReportError(context, end.error());
    *context.err << "pincerctl: task " << id << " was accepted; run `pincerctl wait " << id
                 << "` to see its end\n";
    return code;
  }
  return PrintEnd(context, *end);
}

}  // namespace pincer::ctl

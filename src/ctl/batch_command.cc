// `pincerctl submit --batch FILE.jsonl`: many tasks on one connection,
// pipelined so a large file is not one round trip per task.

#include <cstddef>
#include <iostream>
#include <map>
#include <set>
#include <vector>

#include "ctl/commands.h"
#include "ctl/exit_code.h"
#include "ctl/render.h"

namespace pincer::ctl {
namespace {

// Submits in flight at once: enough to hide the round trip, few enough
// that the daemon's answers never pile up unread in the socket buffers.
constexpr std::size_t kWindow = 256;
constexpr std::size_t kProgressEvery = 100;

struct BatchTask {
  std::size_t line = 0;  // 1-based line number in the file
  nlohmann::json request;
};

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

int RunBatchSubmit(const CommandContext& context, const std::string& path) {
  const std::string label = path == "-" ? "stdin" : path;
  client::Result<std::string> text = ReadInput(context, path);
  if (!text.ok()) return ReportError(context, text.error());

  // Check every line before sending any, so a typo on line 900 does not
  // leave 899 tasks submitted and the rest not.
  std::vector<BatchTask> tasks;
  bool bad_input = false;
  std::string_view rest(*text);
  for (std::size_t number = 1; !rest.empty(); ++number) {
    const std::size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    if (IsBlank(line)) continue;
    client::Result<nlohmann::json> request = ParseBatchLine(line);
    if (!request.ok()) {
      *context.err << "pincerctl: " << label << ":" << number << ": " << request.error().message
                   << "\n";
      bad_input = true;
      continue;
    }
    tasks.push_back({number, std::move(request).value()});
  }
  if (bad_input) {
    *context.err << "pincerctl: nothing was submitted\n";
    return kExitUsage;
  }

  nlohmann::json json_out = nlohmann::json::array();
  if (tasks.empty()) {
    if (context.options.json) PrintJson(context, json_out);
    return kExitOk;
  }
  auto client = DialDaemon(context);
  if (!client.ok()) return ReportError(context, client.error());

  int exit_code = kExitOk;
  std::vector<nlohmann::json> answers(tasks.size());  // null until answered
  std::map<std::int64_t, std::size_t> in_flight;      // req -> index in tasks
  std::size_t next_send = 0;
  std::size_t next_print = 0;  // answers are printed in file order
  std::size_t answered = 0;

  auto show_progress = [&](bool last) {
    if (!context.err_is_terminal) return;
    if (!last && answered % kProgressEvery != 0) return;
    *context.err << "\rsubmitted " << answered << "/" << tasks.size() << (last ? "\n" : "")
                 << std::flush;
  };
  std::set<std::string> warned;
  auto print_ready = [&] {
    for (; next_print < tasks.size() && !answers[next_print].is_null(); ++next_print) {
      nlohmann::json& answer = answers[next_print];
      const std::size_t line = tasks[next_print].line;
      if (answer.value("type", "") == "error") {
        const std::string code = Field(answer, "code");
        *context.err << "pincerctl: " << label << ":" << line << ": " << code << ": "
                     << Field(answer, "message") << "\n";
        if (exit_code == kExitOk) exit_code = ExitCodeForServerCode(code);
        if (context.options.json) {
          json_out.push_back(
              {{"line", line}, {"error", {{"code", code}, {"message", Field(answer, "message")}}}});
        }
      } else {
        const std::string warning = answer.value("warning", std::string());
        // Each warning once: a batch of one skill would repeat it per line.
        if (!warning.empty() && warned.insert(warning).second) {
          *context.err << "pincerctl: " << label << ":" << line << ": warning: " << warning << "\n";
        }
        if (context.options.json) {
          nlohmann::json item = {{"line", line}, {"id", Field(answer, "id")}};
          if (!warning.empty()) item["warning"] = warning;
          json_out.push_back(std::move(item));
        } else {
          *context.out << Field(answer, "id") << "\n";
        }
      }
      answer = true;  // printed; keeps the slot non-null, drops the payload
    }
  };
  auto fail = [&](const client::Error& error) {
    show_progress(true);
    const int code = ReportError(context, error);
    *context.err << "pincerctl: " << answered << " of " << tasks.size()
                 << " submits were answered; the others may or may not have been accepted\n";
    if (context.options.json) PrintJson(context, json_out);
    return code;
  };

  while (answered < tasks.size()) {
    while (in_flight.size() < kWindow && next_send < tasks.size()) {
      client::Result<std::int64_t> req = (*client)->SendRequest(tasks[next_send].request);
      if (!req.ok()) return fail(req.error());
      tasks[next_send].request = nullptr;  // sent; free the payload
      in_flight.emplace(*req, next_send++);
    }
    client::Result<nlohmann::json> message = (*client)->ReadMessage(kRequestTimeout);
    if (!message.ok()) return fail(message.error());
    auto req = message->find("req");
    if (req == message->end() || !req->is_number_integer()) {
      // An error without req: the daemon could not read one of our lines at
      // all, and we cannot tell which. Stop rather than guess.
      if (message->value("type", "") == "error") {
        return fail(client::Error{client::ErrorKind::kServer, Field(*message, "code"),
                                  Field(*message, "message")});
      }
      continue;
    }
    auto slot = in_flight.find(req->get<std::int64_t>());
    if (slot == in_flight.end()) continue;
    answers[slot->second] = std::move(message).value();
    in_flight.erase(slot);
    ++answered;
    print_ready();
    show_progress(answered == tasks.size());
  }
  if (context.options.json) PrintJson(context, json_out);
  return exit_code;
}

}  // namespace pincer::ctl

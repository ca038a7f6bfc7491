// Building `submit` requests from pincerctl's flags and from the lines of a
// --batch file, with every check that needs no daemon: bad input is exit 2
// before anything is sent, even when the daemon is unreachable. Pure.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/result.h"
#include "common/json_text.h"
#include "config/config.h"      // ParseDuration: the config file's duration syntax
#include "protocol/messages.h"  // the ranges pincerd accepts

namespace pincer::ctl {

client::Error InvalidInput(std::string message);

// The task fields a submitter sets (SPEC section 3). Unset optionals are
// left out of the request so the daemon's configured defaults apply.
struct SubmitSpec {
  std::vector<std::string> skills;
  nlohmann::json payload;  // null when none was given
  std::optional<std::int64_t> priority;
  std::optional<std::string> timeout;  // duration text, or integer ms as text
  std::optional<std::int64_t> max_attempts;
  std::optional<std::string> session;
  std::optional<std::string> key;
  bool wait = false;
  // The task's own retry backoff (duration text, or integer ms as text).
  std::optional<std::string> backoff_initial;
  std::optional<std::string> backoff_max;
  std::optional<double> backoff_jitter;
};

// `text` must be one JSON value. `source` names where it came from
// ("--payload", "payload file x.json") for the message.
client::Result<nlohmann::json> ParsePayload(std::string_view text, const std::string& source);

// --text / --text-file: the text itself as a JSON string payload, exactly
// (a file's trailing newline too). Text that is not UTF-8 is refused rather
// than sent with replacement characters.
client::Result<nlohmann::json> TextPayload(std::string text, const std::string& source);

// {"type":"submit",...} without `req`; the client assigns that.
client::Result<nlohmann::json> BuildSubmit(const SubmitSpec& spec);

// One line of a --batch file: an object with the protocol's submit fields
// (skills, payload, priority, timeout, max_attempts, session, key). Unknown
// fields are refused: a misspelt "priorty" silently ignored would be worse.
client::Result<nlohmann::json> ParseBatchLine(std::string_view line);

}  // namespace pincer::ctl

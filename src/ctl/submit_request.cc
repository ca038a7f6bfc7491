#include "ctl/submit_request.h"

namespace pincer::ctl {

client::Error InvalidInput(std::string message) {
  return client::Error{client::ErrorKind::kInvalidArgument, "invalid_request", std::move(message)};
}

client::Result<nlohmann::json> ParsePayload(std::string_view text, const std::string& source) {
  // The submit object is level 1. pincerd's own bound (limits.max_json_depth,
  // 64 by default) is usually lower, and it says so; this one keeps the
  // recursive walks of the JSON library here from ever seeing a value
  // nested without bound.
  if (!JsonDepthWithin(text, kMaxPeerJsonDepth - 1)) {
    return InvalidInput(source + " nests arrays and objects deeper than " +
                        std::to_string(kMaxPeerJsonDepth - 1) + " levels");
  }
  nlohmann::json payload = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (payload.is_discarded()) {
    return InvalidInput(source +
                        " is not valid JSON (a text payload must be quoted, e.g. "
                        "--payload '\"hello\"')");
  }
  return payload;
}

client::Result<nlohmann::json> TextPayload(std::string text, const std::string& source) {
  nlohmann::json payload = std::move(text);
  try {
    (void)payload.dump();  // strict: throws on invalid UTF-8
  } catch (const nlohmann::json::type_error&) {
    return InvalidInput(source + " is not UTF-8 text");
  }
  return payload;
}

client::Result<nlohmann::json> BuildSubmit(const SubmitSpec& spec) {
  nlohmann::json request = {{"type", "submit"}, {"skills", spec.skills}, {"payload", spec.payload}};
  if (spec.priority) request["priority"] = *spec.priority;
  if (spec.timeout) {
    std::optional<Duration> duration = ParseDuration(*spec.timeout);
    if (!duration) {
      return InvalidInput("bad timeout '" + *spec.timeout +
                          "': use a duration like 250ms, 30s, 10m, 1h30m (0 = none)");
    }
    if (duration->count() > kMaxTimeoutMs) {
      return InvalidInput("bad timeout '" + *spec.timeout + "': at most 8760h (365 days)");
    }
    request["timeout"] = duration->count();
  }
  if (spec.max_attempts) {
    if (*spec.max_attempts < 1 || *spec.max_attempts > kMaxAttempts) {
      return InvalidInput("max_attempts must be from 1 to " + std::to_string(kMaxAttempts));
    }
    request["max_attempts"] = *spec.max_attempts;
  }
  if (spec.session) request["session"] = *spec.session;
  if (spec.key) request["key"] = *spec.key;
  if (spec.wait) request["wait"] = true;
  if (spec.backoff_initial || spec.backoff_max || spec.backoff_jitter) {
    nlohmann::json backoff = nlohmann::json::object();
    std::optional<Duration> parts[2];
    const std::optional<std::string>* texts[2] = {&spec.backoff_initial, &spec.backoff_max};
    const char* names[2] = {"initial", "max"};
    for (int i = 0; i < 2; ++i) {
      if (!*texts[i]) continue;
      parts[i] = ParseDuration(**texts[i]);
      const std::string what = std::string("bad backoff ") + names[i] + " '" + **texts[i] + "'";
      if (!parts[i]) return InvalidInput(what + ": use a duration like 250ms, 30s, 10m, 1h30m");
      if (parts[i]->count() < 0) return InvalidInput(what + ": must not be negative");
      if (parts[i]->count() > kMaxBackoffMs) return InvalidInput(what + ": at most 87600h");
      backoff[names[i]] = parts[i]->count();
    }
    if (parts[0] && parts[1] && *parts[1] < *parts[0]) {
      return InvalidInput("backoff max must not be less than backoff initial");
    }
    if (spec.backoff_jitter) {
      if (!(*spec.backoff_jitter >= 0 && *spec.backoff_jitter <= 1)) {
        return InvalidInput("backoff jitter must be between 0 and 1");
      }
      backoff["jitter"] = *spec.backoff_jitter;
    }
    request["backoff"] = std::move(backoff);
  }
  return request;
}

client::Result<nlohmann::json> ParseBatchLine(std::string_view line) {
  if (!JsonDepthWithin(line, kMaxPeerJsonDepth)) {
    return InvalidInput("nests arrays and objects deeper than " +
                        std::to_string(kMaxPeerJsonDepth) + " levels");
  }
  nlohmann::json object = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) return InvalidInput("not valid JSON");
  if (!object.is_object()) return InvalidInput("not a JSON object");

  SubmitSpec spec;
  for (const auto& [name, value] : object.items()) {
    if (name == "skills") {
      if (!value.is_array()) return InvalidInput("skills must be an array of strings");
      for (const auto& skill : value) {
        if (!skill.is_string()) return InvalidInput("skills must be an array of strings");
        spec.skills.push_back(skill.get<std::string>());
      }
    } else if (name == "payload") {
      spec.payload = value;
    } else if (name == "priority") {
      if (!value.is_number_integer()) return InvalidInput("priority must be an integer");
      if (value.is_number_unsigned() && value.get<std::uint64_t>() > std::uint64_t{INT64_MAX}) {
        return InvalidInput("priority must be an integer from " + std::to_string(INT64_MIN) +
                            " to " + std::to_string(INT64_MAX));
      }
      spec.priority = value.get<std::int64_t>();
    } else if (name == "timeout") {
      if (value.is_string()) {
        spec.timeout = value.get<std::string>();
      } else if (value.is_number_integer() && value.get<std::int64_t>() >= 0) {
        spec.timeout = std::to_string(value.get<std::int64_t>());
      } else {
        return InvalidInput("timeout must be a duration string or milliseconds >= 0");
      }
    } else if (name == "max_attempts") {
      if (!value.is_number_integer()) return InvalidInput("max_attempts must be an integer");
      // Past int64 it is past any range: 0 is refused as such below.
      spec.max_attempts =
          value.is_number_unsigned() && value.get<std::uint64_t>() > std::uint64_t{INT64_MAX}
              ? 0
              : value.get<std::int64_t>();
    } else if (name == "backoff") {
      if (value.is_null()) continue;
      if (!value.is_object()) return InvalidInput("backoff must be an object");
      for (const auto& [part, v] : value.items()) {
        if (part == "initial" || part == "max") {
          std::string text;
          if (v.is_string()) {
            text = v.get<std::string>();
          } else if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
            text = std::to_string(v.get<std::int64_t>());
          } else {
            return InvalidInput("backoff." + part +
                                " must be a duration string or milliseconds >= 0");
          }
          (part == "initial" ? spec.backoff_initial : spec.backoff_max) = text;
        } else if (part == "jitter") {
          if (!v.is_number()) return InvalidInput("backoff.jitter must be a number");
          spec.backoff_jitter = v.get<double>();
        } else {
          return InvalidInput("unknown field 'backoff." + part +
                              "' (allowed: initial, max, jitter)");
        }
      }
    } else if (name == "session" || name == "key") {
      if (value.is_null()) continue;
      if (!value.is_string()) return InvalidInput(name + " must be a string");
      (name == "session" ? spec.session : spec.key) = value.get<std::string>();
    } else {
      return InvalidInput("unknown field '" + name +
                          "' (allowed: skills, payload, priority, timeout, max_attempts, "
                          "session, key, backoff)");
    }
  }
  return BuildSubmit(spec);
}

}  // namespace pincer::ctl

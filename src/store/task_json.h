// The JSON columns the SQL stores keep a task's lists in: its skills (an
// array of strings) and its attempt errors (an array of {attempt, worker,
// error}).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "task/task_record.h"

namespace pincer {

std::string ErrorsJson(const std::vector<AttemptError>& errors);

// Read a column back; false for anything that is not what the writer wrote
// (a row never throws). The common empty arrays skip the parser: parsing
// the JSON columns of a million rows dominates recovery.
bool ParseSkills(std::string_view text, std::vector<std::string>& out);
bool ParseErrors(std::string_view text, std::vector<AttemptError>& out);

}  // namespace pincer

#include "support/metrics_text.h"

#include <regex>
#include <sstream>

namespace pincer::test {

std::multiset<std::string> LabelValues(const std::string& text, const std::string& metric,
                                       const std::string& label) {
  std::multiset<std::string> values;
  const std::regex value_re(label + "=\"([^\"]*)\"");
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(metric + "{", 0) != 0) continue;
    std::smatch m;
    if (std::regex_search(line, m, value_re)) values.insert(m[1]);
  }
  return values;
}

}  // namespace pincer::test

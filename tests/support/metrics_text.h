// Reading a Prometheus /metrics text in tests: the unit test of the
// metrics module and the /metrics endpoint's integration test ask the same
// questions of it.
#pragma once

#include <set>
#include <string>

namespace pincer::test {

// The value of `label` in each sample of `metric` (a histogram's series:
// ask for its `_count`), one entry per sample.
std::multiset<std::string> LabelValues(const std::string& text, const std::string& metric,
                                       const std::string& label);

}  // namespace pincer::test

// Fuzz target: the config loader (config/), YAML and JSON. The input's
// first byte picks the format; the rest is written to a file of that
// extension and loaded as pincerd loads it (parse, read, validate). Any
// text gives a Config or a ConfigError; nothing else.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config/config.h"
#include "config/document.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pincer;
  if (size == 0) return 0;
  const bool yaml = data[0] & 1;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);

  // The document layer alone (the same text, no file).
  config_internal::Problems problems("fuzz");
  (void)config_internal::ParseDocument(
      text, yaml ? config_internal::Format::kYaml : config_internal::Format::kJson, problems);

  static const std::string dir = [] {
    const char* base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string t = std::string(base) + "/pincer-config-fuzz-XXXXXX";
    if (!mkdtemp(t.data())) std::abort();
    return t;
  }();
  const std::string path = dir + (yaml ? "/pincer.yaml" : "/pincer.json");
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  ConfigResult r = LoadConfig(path);
  if (r.ok() && ValidateConfig(*r.config)) {
    std::fprintf(stderr, "LoadConfig accepted a config that ValidateConfig refuses\n");
    std::abort();
  }
  ::unlink(path.c_str());

  // A duration reads back from its shortest form.
  if (auto d = ParseDuration(text)) {
    const std::string shown = FormatDuration(*d);
    if (ParseDuration(shown) != d) {
      std::fprintf(stderr, "duration '%s' shows as '%s', which reads back differently\n",
                   text.c_str(), shown.c_str());
      std::abort();
    }
  }
  return 0;
}

// Expected errors are values. A Status carries the wire error code
// (snake_case, see docs/protocol.md) and a human message.
#pragma once

#include <string>
#include <utility>

namespace pincer {

class Status {
 public:
  Status() = default;  // ok
  Status(std::string code, std::string message)
      : code_(std::move(code)), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_.empty(); }
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  std::string code_;
  std::string message_;
};

}  // namespace pincer

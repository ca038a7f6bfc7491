// Errors as values for the client library: Result<T> carries either a value
// or an Error, Status carries nothing or an Error. Nothing in src/client
// throws to its caller.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace pincer::client {

// Where an error came from, so callers can react without parsing `code`.
enum class ErrorKind {
  kInvalidArgument,  // the caller passed something unusable (a malformed address)
  kConnect,          // could not reach the daemon (bad address, refused, resolve failed)
  kTimeout,          // the deadline passed before the operation finished
  kClosed,           // the peer closed the connection
  kServer,           // the daemon answered with an `error` message
  kProtocol,         // the daemon sent something that is not a valid message
};

struct Error {
  Error() = default;
  Error(ErrorKind k, std::string c, std::string m, std::string l = "")
      : kind(k), code(std::move(c)), message(std::move(m)), leader(std::move(l)) {}

  ErrorKind kind = ErrorKind::kProtocol;
  // For kServer the daemon's snake_case code ("not_found", "unauthorized",
  // ...). Otherwise a local code: "connect_failed", "tls_failed" (kConnect:
  // the TLS handshake failed), "timeout", "closed",
  // "bad_json", "frame_too_large", "bad_message".
  std::string code;
  std::string message;
  // kServer "not_leader": the leader's address, when the standby knows it.
  std::string leader;

  std::string ToString() const { return code + ": " + message; }
};

// A value or an Error. REQUIRES: value() only when ok(), error() only when
// !ok().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT: implicit by design
  static Status Ok() { return Status(); }

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  // REQUIRES: !ok().
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

}  // namespace pincer::client

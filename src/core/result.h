#pragma once
// Result<T>: a value or an Error. Expected failures (bad input, I/O, network,
// backpressure) travel as values; exceptions stay at the edges (start-up,
// thread entry points, HTTP handlers).
//
// Example:
//   Result<Config> LoadConfig(const std::filesystem::path& p);
//   auto cfg = LoadConfig(p);
//   if (!cfg) return cfg.error();          // propagate
//   Use(*cfg);

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace embedstream {

enum class errc {
  ok = 0,
  invalid_argument,  // caller gave something malformed
  not_found,         // file, key, route, record missing
  io_error,          // read/write/mmap failed
  corrupt,           // bytes present but not what the format says
  unsupported,       // valid but not something we implement
  unavailable,       // a remote system is down or refused
  timeout,
  internal,  // a bug: an invariant broke
};

const char* ErrcName(errc code);

struct Error {
  errc code = errc::internal;
  std::string message;

  Error() = default;
  Error(errc c, std::string m) : code(c), message(std::move(m)) {}
  // "corrupt: model.safetensors: header length 9999 past end of file"
  std::string ToString() const;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

// Result<void> equivalent.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  static Status Ok() { return {}; }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace embedstream

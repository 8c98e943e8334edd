#include "core/result.h"

namespace embedstream {

const char* ErrcName(errc code) {
  switch (code) {
    case errc::ok:
      return "ok";
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::not_found:
      return "not_found";
    case errc::io_error:
      return "io_error";
    case errc::corrupt:
      return "corrupt";
    case errc::unsupported:
      return "unsupported";
    case errc::unavailable:
      return "unavailable";
    case errc::timeout:
      return "timeout";
    case errc::internal:
      return "internal";
  }
  return "unknown";
}

std::string Error::ToString() const { return std::string(ErrcName(code)) + ": " + message; }

}  // namespace embedstream

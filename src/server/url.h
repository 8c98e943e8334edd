#pragma once
// Request-target helpers: percent-decoding and query strings. Pure functions.

#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace embedstream::server {

// Decodes %XX escapes; '+' becomes a space only when plus_is_space (query
// strings). A malformed escape ("%4", "%zz") is kept as it is.
std::string PercentDecode(std::string_view s, bool plus_is_space);

// "a=1&b=x+y&c" -> {a: "1", b: "x y", c: ""}. Keys and values are decoded;
// the first value of a repeated key wins; empty pieces are skipped.
std::map<std::string, std::string> ParseQuery(std::string_view query);

// Splits a request target at the first '?': {path (decoded), raw query}.
std::pair<std::string, std::string_view> SplitTarget(std::string_view target);

}  // namespace embedstream::server

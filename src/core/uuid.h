#pragma once
// UUID helpers: random v4 ids for records that arrive without one, and
// parsing/canonical formatting. Thread-safe.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace embedstream {

using Uuid = std::array<uint8_t, 16>;

Uuid RandomUuidV4();
// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower case.
std::string FormatUuid(const Uuid& u);
// Accepts the canonical 8-4-4-4-12 form in either case; nullopt otherwise.
std::optional<Uuid> ParseUuid(std::string_view s);

}  // namespace embedstream

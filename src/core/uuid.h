#pragma once
// UUID helpers: random v4 ids, name-based v5 ids for records that arrive
// without one (Kafka: topic/partition/offset), parsing and canonical
// formatting. Thread-safe.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace embedstream {

using Uuid = std::array<uint8_t, 16>;

Uuid RandomUuidV4();
// Name-based (SHA-1) UUID, RFC 4122 section 4.3: the same namespace and name
// always give the same id (a replayed record keeps its id).
Uuid UuidV5(const Uuid& namespace_id, std::string_view name);
// Namespace for ids embedstream derives ("embedstream" under the URL namespace).
const Uuid& EmbedstreamNamespace();
// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower case.
std::string FormatUuid(const Uuid& u);
// Accepts the canonical 8-4-4-4-12 form in either case; nullopt otherwise.
std::optional<Uuid> ParseUuid(std::string_view s);
// The UUID a store keeps for a message id: the id itself when it is a UUID
// (lower case), else UuidV5(EmbedstreamNamespace(), id). `is_uuid` (optional)
// tells which.
std::string StoredUuid(std::string_view id, bool* is_uuid = nullptr);

}  // namespace embedstream

#include "core/uuid.h"

#include <set>

#include <gtest/gtest.h>

namespace embedstream {
namespace {

TEST(Uuid, V4HasVersionAndVariantBits) {
  const Uuid u = RandomUuidV4();
  EXPECT_EQ(u[6] >> 4, 4);
  EXPECT_EQ(u[8] >> 6, 2);
  const std::string s = FormatUuid(u);
  ASSERT_EQ(s.size(), 36u);
  EXPECT_EQ(s[14], '4');
}

TEST(Uuid, V4IsUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(FormatUuid(RandomUuidV4()));
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Uuid, ParseRoundTripsAndRejectsMalformed) {
  const std::string s = "550e8400-e29b-41d4-a716-446655440000";
  auto u = ParseUuid(s);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(FormatUuid(*u), s);
  EXPECT_TRUE(ParseUuid("550E8400-E29B-41D4-A716-446655440000").has_value());
  EXPECT_FALSE(ParseUuid("550e8400e29b41d4a716446655440000").has_value());
  EXPECT_FALSE(ParseUuid("550e8400-e29b-41d4-a716-44665544000g").has_value());
  EXPECT_FALSE(ParseUuid("").has_value());
}

}  // namespace
}  // namespace embedstream

namespace embedstream {
namespace {

TEST(Uuid, V5MatchesRfc4122Vectors) {
  // Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org")
  const Uuid dns = *ParseUuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
  EXPECT_EQ(FormatUuid(UuidV5(dns, "python.org")), "886313e1-3b8a-5372-9b90-0c9aee199e5d");
  // uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/embedstream")
  EXPECT_EQ(FormatUuid(EmbedstreamNamespace()), "c8dc6e78-5c72-5863-a593-3efdbcf78967");
}

TEST(Uuid, V5IsDeterministicAndNameSensitive) {
  const Uuid a = UuidV5(EmbedstreamNamespace(), "text-messages/0/42");
  EXPECT_EQ(a, UuidV5(EmbedstreamNamespace(), "text-messages/0/42"));
  EXPECT_NE(a, UuidV5(EmbedstreamNamespace(), "text-messages/0/43"));
  EXPECT_EQ(a[6] >> 4, 5);
}

}  // namespace
}  // namespace embedstream

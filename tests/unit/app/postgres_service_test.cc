#include "app/postgres_service.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace embedstream::app {
namespace {

TEST(FilterToContainment, DottedPathsNestAndLiteralsKeepTheirType) {
  store::Filter f;
  f.equals = {{"metadata.user_id", "\"u1\""}, {"a.b", "3"}, {"a.c", "true"}, {"n", "null"}};
  auto c = FilterToContainment(f);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(nlohmann::json::parse(*c),
            nlohmann::json::parse(R"({"user_id":"u1","a":{"b":3,"c":true},"n":null})"));
  EXPECT_EQ(*FilterToContainment({}), "{}");
}

TEST(FilterToContainment, CollisionsAndBadLiteralsAreInvalidArgument) {
  store::Filter collide;
  collide.equals = {{"a", "1"}, {"a.b", "2"}};
  EXPECT_EQ(FilterToContainment(collide).error().code, errc::invalid_argument);
  store::Filter twice;
  twice.equals = {{"a", "1"}, {"metadata.a", "2"}};
  EXPECT_EQ(FilterToContainment(twice).error().code, errc::invalid_argument);
  store::Filter bad;
  bad.equals = {{"a", "{not json"}};
  EXPECT_EQ(FilterToContainment(bad).error().code, errc::invalid_argument);
  store::Filter empty_key;
  empty_key.equals = {{"a..b", "1"}};
  EXPECT_EQ(FilterToContainment(empty_key).error().code, errc::invalid_argument);
}

}  // namespace
}  // namespace embedstream::app

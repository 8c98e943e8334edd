#include "core/json_writer.h"

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace embedstream {
namespace {

TEST(JsonWriter, WritesNestedValuesWithCommas) {
  JsonWriter w;
  w.BeginObject()
      .Key("a")
      .Int(-3)
      .Key("b")
      .BeginArray()
      .Bool(true)
      .Null()
      .String("x")
      .EndArray()
      .Key("c")
      .BeginObject()
      .Key("d")
      .Uint(7)
      .EndObject()
      .EndObject();
  EXPECT_EQ(w.str(), R"({"a":-3,"b":[true,null,"x"],"c":{"d":7}})");
}

TEST(JsonWriter, EscapesControlCharsAndQuotes) {
  JsonWriter w;
  w.String(std::string("q\"b\\n\n\t\x01", 8));
  EXPECT_EQ(w.str(), R"("q\"b\\n\n\t\u0001")");
  EXPECT_EQ(nlohmann::json::parse(w.str()).get<std::string>(), std::string("q\"b\\n\n\t\x01", 8));
}

TEST(JsonWriter, ReplacesInvalidUtf8SoOutputStaysValid) {
  JsonWriter w;
  w.String("ok\xff\xc3(é");
  const auto parsed = nlohmann::json::parse(w.str()).get<std::string>();
  EXPECT_EQ(parsed, "ok\xEF\xBF\xBD\xEF\xBF\xBD(é");
}

TEST(JsonWriter, FloatsRoundTripExactly) {
  const std::vector<float> values = {0.1f, -1.0e-8f,     3.4028235e38f, 1.17549435e-38f,
                                     0.0f, -0.033271957f};
  JsonWriter w;
  w.FloatArray(values);
  const auto parsed = nlohmann::json::parse(w.str());
  ASSERT_EQ(parsed.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(static_cast<float>(parsed[i].get<double>()), values[i]) << w.str();
  }
}

TEST(JsonWriter, NonFiniteBecomesNull) {
  JsonWriter w;
  w.BeginArray().Double(std::nan("")).Float(std::numeric_limits<float>::infinity()).EndArray();
  EXPECT_EQ(w.str(), "[null,null]");
}

}  // namespace
}  // namespace embedstream

#include "pipeline/event_mapping.h"

#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace embedstream::pipeline {
namespace {

using nlohmann::json;

constexpr std::string_view kSeed002 = R"({
  "event_id": "6f1c2a4e-0000-4000-8000-000000000001",
  "timestamp": "2024-01-15T10:30:00Z",
  "user_id": "user123",
  "event_type": "purchase",
  "product": {
    "id": "9b2e-0001",
    "name": "Laptop Pro 15",
    "description": "A fast laptop with a great screen",
    "category": "Electronics",
    "price": 1299.99
  },
  "session_id": "session789"
})";

EventMapping Seed002Mapping() {
  EventMapping m;
  m.text_template = "{product.name}. {product.description}";
  m.payload_fields = {"event_type",       "user_id",       "session_id", "product.id",
                      "product.category", "product.price", "timestamp"};
  m.timestamp_field = "timestamp";
  return m;
}

CompiledMapping MustCompile(EventMapping m) {
  auto c = CompiledMapping::Compile(std::move(m));
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().ToString());
  return std::move(c).value();
}

CompiledMapping Tpl(std::string tpl, std::vector<std::string> payload = {}) {
  EventMapping m;
  m.text_template = std::move(tpl);
  m.payload_fields = std::move(payload);
  return MustCompile(std::move(m));
}

std::string CompileError(EventMapping m) {
  auto c = CompiledMapping::Compile(std::move(m));
  if (c.ok()) return "";
  EXPECT_EQ(c.error().code, errc::invalid_argument);
  return c.error().message;
}

std::string TplError(std::string tpl) {
  EventMapping m;
  m.text_template = std::move(tpl);
  return CompileError(std::move(m));
}

// The rendered text of `event`, or "<reason>" when it is rejected.
std::string Text(const CompiledMapping& m, std::string event) {
  auto r = MapEvent(event, m);
  if (!r.ok()) return "<" + r.error.reason + ">";
  return r.record->text;
}

TEST(EventMapping, Seed002Event) {
  auto m = MustCompile(Seed002Mapping());
  auto r = MapEvent(kSeed002, m);
  ASSERT_TRUE(r.ok()) << r.error.reason << ": " << r.error.detail;
  EXPECT_EQ(r.record->id, "6f1c2a4e-0000-4000-8000-000000000001");
  EXPECT_EQ(r.record->text, "Laptop Pro 15. A fast laptop with a great screen");
  ASSERT_TRUE(r.record->timestamp.has_value());
  EXPECT_DOUBLE_EQ(*r.record->timestamp, 1705314600.0);
  EXPECT_TRUE(r.record->source.empty());
  // Nesting kept, configured order, numbers as written, text last.
  EXPECT_EQ(r.record->metadata_json,
            R"({"event_type":"purchase","user_id":"user123","session_id":"session789",)"
            R"("product":{"id":"9b2e-0001","category":"Electronics","price":1299.99},)"
            R"("timestamp":"2024-01-15T10:30:00Z",)"
            R"("text":"Laptop Pro 15. A fast laptop with a great screen"})");
  auto meta = json::parse(r.record->metadata_json);
  EXPECT_EQ(meta["product"]["category"], "Electronics");
}

TEST(EventMapping, MissingFieldsRenderSensibly) {
  auto m = Tpl("{product.name}. {product.description}");
  EXPECT_EQ(Text(m, R"({"event_id":"1","product":{"name":"Name","description":"Desc"}})"),
            "Name. Desc");
  EXPECT_EQ(Text(m, R"({"event_id":"1","product":{"name":"Name"}})"), "Name");
  EXPECT_EQ(Text(m, R"({"event_id":"1","product":{"description":"Desc"}})"), "Desc");
  EXPECT_EQ(Text(m, R"({"event_id":"1","product":{"name":null,"description":""}})"),
            "<empty_text>");
  EXPECT_EQ(Text(m, R"({"event_id":"1","product":{"name":"  ","description":"Desc"}})"), "Desc");
  EXPECT_EQ(Text(m, R"({"event_id":"1"})"), "<empty_text>");
  EXPECT_EQ(Text(m, R"({"event_id":"1","product":"flat"})"), "<empty_text>");
}

TEST(JoinTemplate, RuleExamples) {
  auto join = [](std::vector<std::string> lits, std::vector<std::string> vals) {
    return JoinTemplate(lits, vals);
  };
  // "{name}. {desc}."
  EXPECT_EQ(join({"", ". ", "."}, {"Name", "Desc"}), "Name. Desc.");
  EXPECT_EQ(join({"", ". ", "."}, {"Name", ""}), "Name.");
  EXPECT_EQ(join({"", ". ", "."}, {"", "Desc"}), "Desc.");
  EXPECT_EQ(join({"", ". ", "."}, {"", ""}), "");
  // "{a}, {b}, {c}"
  EXPECT_EQ(join({"", ", ", ", ", ""}, {"A", "", "C"}), "A, C");
  EXPECT_EQ(join({"", ", ", ", ", ""}, {"", "B", "C"}), "B, C");
  EXPECT_EQ(join({"", ", ", ", ", ""}, {"A", "B", ""}), "A, B");
  // "{title} by {author}, {year}": the literal before the later value wins.
  EXPECT_EQ(join({"", " by ", ", ", ""}, {"T", "", "1999"}), "T, 1999");
  // Outer text is kept with any value, dropped with none.
  EXPECT_EQ(join({"Product: ", " in ", ""}, {"", "Books"}), "Product: Books");
  EXPECT_EQ(join({"Product: ", " in ", ""}, {"", ""}), "");
  EXPECT_EQ(join({"Product: ", " in ", ""}, {"Name", ""}), "Product: Name");
  // The documented limitation: wrapping text keeps its closing part.
  EXPECT_EQ(join({"", " (", ")"}, {"Name", ""}), "Name)");
  // Whitespace collapses where pieces meet, and the result is trimmed.
  EXPECT_EQ(join({"  ", "  -  ", "  "}, {" A ", " B "}), "A -  B");
  EXPECT_EQ(join({"", " ", ""}, {"A\n", "\tB"}), "A\nB");
  // Internal whitespace of a value is its own.
  EXPECT_EQ(join({"", ""}, {"a  b\n\nc"}), "a  b\n\nc");
}

TEST(EventMapping, PlaceholderValueForms) {
  auto m = Tpl("[{v}]");
  auto text = [&](std::string v) { return Text(m, R"({"event_id":"x","v":)" + v + "}"); };
  EXPECT_EQ(text(R"("str")"), "[str]");
  EXPECT_EQ(text("3"), "[3]");
  EXPECT_EQ(text("-42"), "[-42]");
  EXPECT_EQ(text("1299.99"), "[1299.99]");
  EXPECT_EQ(text("1e3"), "[1000]");
  EXPECT_EQ(text("2.50"), "[2.5]");
  EXPECT_EQ(text("-0"), "[0]");  // an integer; the payload keeps "-0"
  EXPECT_EQ(text("0.1"), "[0.1]");
  EXPECT_EQ(text("1e300"), "[1e+300]");
  EXPECT_EQ(text("18446744073709551615"), "[18446744073709551615]");
  EXPECT_EQ(text("-9223372036854775808"), "[-9223372036854775808]");
  EXPECT_EQ(text("true"), "[true]");
  EXPECT_EQ(text("false"), "[false]");
  EXPECT_EQ(text("null"), "<empty_text>");
  EXPECT_EQ(text("[1,2]"), "<empty_text>");
  EXPECT_EQ(text(R"({"a":1})"), "<empty_text>");
  EXPECT_EQ(text(R"("")"), "<empty_text>");
}

TEST(EventMapping, UnicodeAndEscapes) {
  auto m = Tpl("{a} | {b}");
  EXPECT_EQ(Text(m, R"({"event_id":"x","a":"caf\u00e9 \ud83d\ude00","b":"line\nnext \"q\" \\"})"),
            "caf\xc3\xa9 \xf0\x9f\x98\x80 | line\nnext \"q\" \\");
  EXPECT_EQ(Text(m, "{\"event_id\":\"x\",\"a\":\"日本語\",\"b\":\"Ünïcödé\"}"), "日本語 | Ünïcödé");
  // Keys are compared unescaped.
  auto k = Tpl("{café}", {"café"});
  auto r = MapEvent(R"({"event_id":"x","caf\u00e9":"ok"})", k);
  ASSERT_TRUE(r.ok()) << r.error.detail;
  EXPECT_EQ(r.record->text, "ok");
  EXPECT_EQ(json::parse(r.record->metadata_json)["café"], "ok");
  // Literal braces.
  EXPECT_EQ(Text(Tpl("{{{a}}} {{x}}"), R"({"event_id":"x","a":"v"})"), "{v} {x}");
}

TEST(EventMapping, DeepPathsAndArrays) {
  auto m = Tpl("{a.b.c.d.e}", {"a.b.c.d.e", "list", "obj.list"});
  auto r =
      MapEvent(R"({"event_id":"x","a":{"b":{"c":{"d":{"e":"deep"}}}},"list":[1, 2.50, {"k": "v"}],)"
               R"("obj":{"list":[]}})",
               m);
  ASSERT_TRUE(r.ok()) << r.error.detail;
  EXPECT_EQ(r.record->text, "deep");
  EXPECT_EQ(r.record->metadata_json,
            R"({"a":{"b":{"c":{"d":{"e":"deep"}}}},"list":[1,2.50,{"k":"v"}],"obj":{"list":[]},)"
            R"("text":"deep"})");
  // A path through an array or a scalar is missing; numbers never index arrays.
  auto arr = Tpl("{list.0}{s.x}", {"list.0", "s.x"});
  EXPECT_EQ(Text(arr, R"({"event_id":"x","list":["a"],"s":"str"})"), "<empty_text>");
}

TEST(EventMapping, PayloadNumbersKeepTheirText) {
  auto m = Tpl("{t}", {"n.a", "n.b", "n.c", "n.d", "n.e", "n.f"});
  auto r =
      MapEvent(R"({"event_id":"x","t":"t","n":{"a":-0,"b":1e3,"c":1.50,"d":18446744073709551615,)"
               R"("e":0.1000000000000000055511151231257827,"f":-1E-7}})",
               m);
  ASSERT_TRUE(r.ok()) << r.error.detail;
  EXPECT_EQ(r.record->metadata_json,
            R"({"n":{"a":-0,"b":1e3,"c":1.50,"d":18446744073709551615,)"
            R"("e":0.1000000000000000055511151231257827,"f":-1E-7},"text":"t"})");
}

TEST(EventMapping, PayloadOmitsMissingKeepsNull) {
  auto m = Tpl("{t}", {"gone", "p.x", "p.y", "q.z", "nul", "str"});
  auto r = MapEvent(R"({"event_id":"x","t":"t","p":{"y":null},"q":{},"nul":null,"str":"a\"b"})", m);
  ASSERT_TRUE(r.ok()) << r.error.detail;
  EXPECT_EQ(r.record->metadata_json, R"({"p":{"y":null},"nul":null,"str":"a\"b","text":"t"})");
  // With no payload fields, only the text.
  auto bare = MapEvent(R"({"event_id":"x","t":"t"})", Tpl("{t}"));
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare.record->metadata_json, R"({"text":"t"})");
}

TEST(EventMapping, DuplicateKeysFirstWins) {
  auto m = Tpl("{t}", {"t"});
  auto r = MapEvent(R"({"event_id":"x","t":"first","t":"second"})", m);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.record->text, "first");
  EXPECT_EQ(json::parse(r.record->metadata_json)["t"], "first");
}

TEST(EventMapping, Ids) {
  auto m = Tpl("{t}");
  auto id = [&](std::string v) {
    auto r = MapEvent(R"({"t":"t","event_id":)" + v + "}", m);
    return r.ok() ? r.record->id : "<" + r.error.reason + ">";
  };
  EXPECT_EQ(id(R"("abc")"), "abc");
  EXPECT_EQ(id("42"), "42");
  EXPECT_EQ(id("-7"), "-7");
  EXPECT_EQ(id("18446744073709551615"), "18446744073709551615");
  EXPECT_EQ(id(R"("")"), "<missing_id>");
  EXPECT_EQ(id("null"), "<missing_id>");
  EXPECT_EQ(id("1.5"), "<wrong_type>");
  EXPECT_EQ(id("true"), "<wrong_type>");
  EXPECT_EQ(id("[1]"), "<wrong_type>");
  EXPECT_EQ(id(R"({"a":1})"), "<wrong_type>");
  EXPECT_EQ(Text(m, R"({"t":"t"})"), "<missing_id>");
  // A nested id field.
  EventMapping nested;
  nested.id_field = "meta.id";
  nested.text_template = "{t}";
  auto r = MapEvent(R"({"t":"t","meta":{"id":"n1"}})", MustCompile(nested));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.record->id, "n1");
}

TEST(EventMapping, BadEventsHaveStableReasons) {
  auto m = MustCompile(Seed002Mapping());
  struct Case {
    std::string input;
    std::string reason;
  } cases[] = {
      {"{\"event_id\": \"unterminated", "invalid_json"},
      {R"({"event_id":"x","product":{"name":"n"}} trailing)", "invalid_json"},
      {R"({"event_id":"x",})", "invalid_json"},
      {"[1,2]", "invalid_json"},
      {R"("just a string")", "invalid_json"},
      {"42", "invalid_json"},
      {"", "invalid_json"},
      {"not json", "invalid_json"},
      {"{\"event_id\":\"x\",\"product\":{\"name\":\"caf\xc3\"}}", "invalid_utf8"},
      {R"({"product":{"name":"n"}})", "missing_id"},
      {R"({"event_id":"x","product":{}})", "empty_text"},
  };
  for (const auto& c : cases) {
    auto r = MapEvent(c.input, m);
    EXPECT_FALSE(r.ok()) << c.input;
    EXPECT_EQ(r.error.reason, c.reason) << c.input << " -> " << r.error.detail;
    EXPECT_FALSE(r.error.detail.empty()) << c.input;
  }
  auto empty = MapEvent(R"({"event_id":"x"})", m);
  EXPECT_NE(empty.error.detail.find("product.name, product.description"), std::string::npos)
      << empty.error.detail;
}

TEST(EventMapping, SizeLimitAndLongTexts) {
  auto m = Tpl("{a} {b}");
  std::string long_a(500'000, 'a');
  std::string long_b = "\\u00e9";
  for (int i = 0; i < 10; ++i) long_b += long_b;  // 1024 escaped é
  std::string event = R"({"event_id":"x","a":")" + long_a + R"(","b":")" + long_b + "\"}";
  auto r = MapEvent(event, m);
  ASSERT_TRUE(r.ok()) << r.error.detail;
  std::string e_acute;
  for (int i = 0; i < 1024; ++i) e_acute += "\xc3\xa9";
  EXPECT_EQ(r.record->text, long_a + " " + e_acute);
  MapOptions small;
  small.max_bytes = 100;
  auto big = MapEvent(event, m, small);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error.reason, "too_large");
}

TEST(EventMapping, Timestamps) {
  EventMapping em;
  em.text_template = "{t}";
  em.timestamp_field = "ts";
  auto m = MustCompile(em);
  auto ts = [&](std::string v) -> std::optional<double> {
    auto r = MapEvent(R"({"event_id":"x","t":"t","ts":)" + v + "}", m);
    EXPECT_TRUE(r.ok()) << v;
    return r.ok() ? r.record->timestamp : std::nullopt;
  };
  EXPECT_EQ(ts("1699123456.789"), 1699123456.789);
  EXPECT_EQ(ts("1705314600"), 1705314600.0);
  EXPECT_EQ(ts(R"("2024-01-15T10:30:00Z")"), 1705314600.0);
  EXPECT_FALSE(ts(R"("yesterday")").has_value());
  EXPECT_FALSE(ts("null").has_value());
  EXPECT_FALSE(ts("{}").has_value());
  // No timestamp_field: unset even when the event has one.
  auto none = MapEvent(kSeed002, Tpl("{product.name}"));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none.record->timestamp.has_value());
}

TEST(ParseTimestampSeconds, Forms) {
  EXPECT_EQ(ParseTimestampSeconds("1970-01-01T00:00:00Z"), 0.0);
  EXPECT_EQ(ParseTimestampSeconds("2024-01-15T10:30:00Z"), 1705314600.0);
  EXPECT_EQ(ParseTimestampSeconds("2024-01-15T10:30:00"), 1705314600.0);
  EXPECT_EQ(ParseTimestampSeconds("2024-01-15 10:30:00.25Z"), 1705314600.25);
  EXPECT_EQ(ParseTimestampSeconds("2024-01-15T12:30:00+02:00"), 1705314600.0);
  EXPECT_EQ(ParseTimestampSeconds("2024-01-15T05:00:00-0530"), 1705314600.0);
  EXPECT_EQ(ParseTimestampSeconds("2000-02-29T00:00:00Z"), 951782400.0);
  EXPECT_EQ(ParseTimestampSeconds("1969-12-31T23:59:59Z"), -1.0);
  for (const char* bad : {"", "2024-01-15", "2024-13-01T00:00:00Z", "2024-01-15T25:00:00Z",
                          "2024-01-15T10:30:00Q", "2024-01-15T10:30:00.Z", "20240115T103000Z",
                          "2024-01-15T10:30:00Z extra", "2024-1-5T10:30:00Z"}) {
    EXPECT_FALSE(ParseTimestampSeconds(bad).has_value()) << bad;
  }
}

TEST(CompiledMapping, TemplateParsing) {
  auto m = Tpl("Hi {{ {a} and { b.c } }}!");
  ASSERT_EQ(m.placeholders().size(), 2u);
  EXPECT_EQ(m.placeholders()[0].dotted, "a");
  EXPECT_EQ(m.placeholders()[1].dotted, "b.c");
  EXPECT_EQ(m.placeholders()[1].keys, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(m.literals(), (std::vector<std::string>{"Hi { ", " and ", " }!"}));
  auto adjacent = Tpl("{a}{b}");
  EXPECT_EQ(adjacent.literals(), (std::vector<std::string>{"", "", ""}));
}

TEST(CompiledMapping, TemplateErrors) {
  EXPECT_NE(TplError("").find("empty template"), std::string::npos);
  EXPECT_NE(TplError("   ").find("empty template"), std::string::npos);
  EXPECT_NE(TplError("no placeholders").find("no {field} placeholder"), std::string::npos);
  EXPECT_NE(TplError("{{escaped}}").find("no {field} placeholder"), std::string::npos);
  EXPECT_NE(TplError("abc {name").find("unclosed '{' at offset 4"), std::string::npos);
  EXPECT_NE(TplError("{a {b}}").find("unclosed '{' at offset 0"), std::string::npos);
  EXPECT_NE(TplError("{a} }").find("unmatched '}' at offset 4"), std::string::npos);
  EXPECT_NE(TplError("{}").find("empty placeholder"), std::string::npos);
  EXPECT_NE(TplError("{  }").find("empty placeholder"), std::string::npos);
  EXPECT_NE(TplError("{a..b}").find("empty key in field path 'a..b'"), std::string::npos);
  EXPECT_NE(TplError("{.a}").find("empty key"), std::string::npos);
  EXPECT_NE(TplError("{a.}").find("empty key"), std::string::npos);
  EXPECT_EQ(TplError("{a}").find("text_template"), std::string::npos);  // ok: no error
  EXPECT_EQ(TplError("x {a.}").rfind("text_template: ", 0), 0u);
}

TEST(CompiledMapping, FieldErrors) {
  auto with = [](auto mutate) {
    EventMapping m;
    m.text_template = "{t}";
    mutate(m);
    return CompileError(std::move(m));
  };
  EXPECT_NE(with([](auto& m) { m.id_field = ""; }).find("id_field: empty field path"),
            std::string::npos);
  EXPECT_NE(with([](auto& m) { m.id_field = "a..b"; }).find("id_field"), std::string::npos);
  EXPECT_NE(with([](auto& m) { m.timestamp_field = "ts."; }).find("timestamp_field"),
            std::string::npos);
  EXPECT_NE(with([](auto& m) {
              m.payload_fields = {"a", "b", "a"};
            }).find("listed twice"),
            std::string::npos);
  EXPECT_NE(with([](auto& m) {
              m.payload_fields = {"product.id", "product"};
            }).find("'product.id' is inside 'product'"),
            std::string::npos);
  EXPECT_NE(with([](auto& m) {
              m.payload_fields = {"product", "product.id"};
            }).find("'product.id' is inside 'product'"),
            std::string::npos);
  EXPECT_NE(with([](auto& m) { m.payload_fields = {"text"}; }).find("collides"), std::string::npos);
  EXPECT_NE(with([](auto& m) { m.payload_fields = {""}; }).find("payload_fields"),
            std::string::npos);
  // Siblings sharing a prefix are fine.
  EXPECT_EQ(with([](auto& m) {
              m.payload_fields = {"product.id", "product.idx", "text_len"};
            }),
            "");
}

// Random events built from pieces: MapEvent must never crash, must keep
// metadata valid JSON, and must agree with nlohmann on which inputs are JSON.
TEST(EventMapping, FuzzishNeverCrashesAndEmitsValidJson) {
  auto m = MustCompile(Seed002Mapping());
  const std::vector<std::string> values = {R"("s")",
                                           "1",
                                           "-0",
                                           "1e3",
                                           "1.5E-300",
                                           "true",
                                           "null",
                                           "[]",
                                           "[1,[2]]",
                                           "{}",
                                           R"({"name":"n"})",
                                           R"("\u00e9")",
                                           R"("\ud83d\ude00")",
                                           R"("tab\t")",
                                           "18446744073709551615"};
  const std::vector<std::string> keys = {"event_id", "product",   "name",   "description",
                                         "price",    "timestamp", "user_id"};
  uint64_t state = 12345;
  auto next = [&](size_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>((state >> 33) % n);
  };
  std::function<std::string(int)> object = [&](int depth) {
    std::string s = "{";
    size_t n = next(5);
    for (size_t i = 0; i < n; ++i) {
      if (i) s += ",";
      s += "\"" + keys[next(keys.size())] + "\":";
      s += (depth < 3 && next(3) == 0) ? object(depth + 1) : values[next(values.size())];
    }
    return s + "}";
  };
  int ok = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string event = object(0);
    // Mostly events with an id and a product, so that many map.
    if (next(5) != 0 && event.size() > 2) {
      std::string head = R"({"event_id":"e)" + std::to_string(i) + R"(","product":)" +
                         (next(4) == 0 ? object(1) : R"({"name":"n","price":1.5})") + ",";
      event.replace(0, 1, head);
    }
    if (next(10) == 0) event.resize(next(event.size() + 1));  // truncated
    auto r = MapEvent(event, m);
    bool valid = json::accept(event) && json::parse(event).is_object();
    if (r.ok()) {
      ++ok;
      EXPECT_TRUE(valid) << event;
      EXPECT_FALSE(r.record->id.empty());
      EXPECT_FALSE(r.record->text.empty());
      ASSERT_TRUE(json::accept(r.record->metadata_json))
          << event << " -> " << r.record->metadata_json;
    } else {
      EXPECT_TRUE(r.error.reason == "missing_id" || r.error.reason == "wrong_type" ||
                  r.error.reason == "empty_text" || (!valid && r.error.reason == "invalid_json"))
          << event << " -> " << r.error.reason;
    }
  }
  EXPECT_GT(ok, 20);
}

}  // namespace
}  // namespace embedstream::pipeline

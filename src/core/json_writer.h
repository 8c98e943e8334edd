#pragma once
// JsonWriter: appends compact JSON to a string. No DOM, no allocation per
// value beyond the output buffer; floats use the shortest round-trip form
// (std::to_chars). Not thread-safe; one writer per output.
//
// Example:
//   JsonWriter w;
//   w.BeginObject().Key("id").String("a1").Key("dims").Int(384).EndObject();
//   std::string_view out = w.view();   // {"id":"a1","dims":384}

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace embedstream {

class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view s);
  JsonWriter& Int(int64_t v);
  JsonWriter& Uint(uint64_t v);
  JsonWriter& Double(double v);  // non-finite values are written as null
  JsonWriter& Float(float v);    // shortest form that round-trips a float
  JsonWriter& Bool(bool v);
  JsonWriter& Null();
  JsonWriter& FloatArray(std::span<const float> values);
  // Inserts already-serialised JSON as one value (caller guarantees validity).
  JsonWriter& Raw(std::string_view json);

  const std::string& str() const { return out_; }
  std::string_view view() const { return out_; }
  std::string Take() { return std::move(out_); }
  void Clear();

 private:
  void BeforeValue();
  std::string out_;
  // One entry per open container: true when the next value needs a comma.
  std::vector<bool> need_comma_;
  bool after_key_ = false;
};

// Appends s to out as a JSON string literal (quotes included). Invalid UTF-8
// bytes are replaced with U+FFFD so the output is always valid JSON.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace embedstream

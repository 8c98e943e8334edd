#pragma once
// Mapped events: turning an arbitrary JSON event (seed 002's e-commerce
// events, say) into an InputRecord, per a mapping from config:
//
//   EventMapping m;
//   m.id_field = "event_id";
//   m.text_template = "{product.name}. {product.description}";
//   m.payload_fields = {"event_type", "user_id", "product.id", "product.price"};
//   m.timestamp_field = "timestamp";
//   auto compiled = CompiledMapping::Compile(m);     // config time: errors here
//   if (!compiled) return compiled.error();
//   DecodeResult r = MapEvent(kafka_value, *compiled);  // per event
//   if (!r.ok()) SendToDlq(r.error.reason, r.error.detail);
//
// Field paths are dotted object keys ("product.name"); a path never indexes
// into an array, and a key containing '.' cannot be addressed.
//
// Template: literal text with {dotted.path} placeholders; "{{" and "}}" are
// literal braces; spaces inside the braces are ignored ("{ a.b }").
// Placeholder values: strings as they are, numbers in shortest form (3, 0.5,
// 1299.99, 1e+300), booleans true/false; null, missing, objects and arrays
// are empty, and so is a string of only whitespace.
//
// Empty parts (the template is L0 {P1} L1 {P2} ... {Pn} Ln):
//   - an empty value is dropped together with the text that joins it:
//     between two non-empty values, only the literal just before the later
//     one is kept;
//   - the outer text L0 and Ln is kept when at least one value is non-empty;
//   - where two pieces meet, whitespace at the start of the second is dropped
//     when the first already ends in whitespace; the result is trimmed.
//   "{name}. {desc}"          both: "Name. Desc"  name only: "Name"  desc only: "Desc"
//   "{name}. {desc}."         name only: "Name."  neither: ""
//   "{a}, {b}, {c}"           b empty: "A, C"     a empty: "B, C"
//   "Product: {name} in {cat}" cat empty: "Product: Name"  name empty: "Product: Cat"
//   Limitation: text that wraps one value ("{name} ({cat})") is not
//   understood: with cat empty it renders "Name)".
//   Every value empty: the text is empty and the event goes to the DLQ.
//
// Output InputRecord: id from id_field (a string, or an integer as its
// decimal text), text as rendered, timestamp from timestamp_field (a number
// of seconds since the epoch, or an RFC 3339 / ISO 8601 string such as
// "2024-01-15T10:30:00Z"; anything else leaves it unset), source empty (the
// caller's default), metadata_json a JSON object holding the payload fields
// with their nesting kept, then the rendered text under "text":
//   payload_fields {"event_type", "product.id", "product.price", "missing"} ->
//   {"event_type":"purchase","product":{"id":"p1","price":1299.99},"text":"..."}
// Missing fields are left out (an object left with no fields too); null is
// kept as null; numbers keep their exact original text (1e3, -0, big
// integers); strings, objects and arrays are copied as they are, compacted.
//
// DLQ reasons (RecordError::reason, as DecodeRecord's): too_large,
// invalid_utf8, invalid_json (also: not an object), missing_id (missing,
// null or empty), wrong_type (the id is not a string or an integer),
// empty_text. Duplicate keys: the first wins.
//
// Thread-safe: a CompiledMapping is immutable; MapEvent keeps its parsers in
// thread_local storage.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "pipeline/record.h"

namespace embedstream::pipeline {

struct EventMapping {
  std::string id_field = "event_id";
  std::string text_template;
  std::vector<std::string> payload_fields;
  std::string timestamp_field;  // empty: the record has no timestamp
};

// A dotted path split into its keys: "product.name" -> {"product", "name"}.
struct FieldPath {
  std::string dotted;
  std::vector<std::string> keys;
};

// A mapping checked and parsed once, at config time.
class CompiledMapping {
 public:
  // Errors (errc::invalid_argument) name the setting and what is wrong:
  // empty id_field or template, a template with no placeholder, an unclosed
  // '{', a lone '}', an empty placeholder or path segment ("{a..b}"),
  // duplicate or overlapping payload fields ("product" and "product.id"), or
  // a payload field "text" (the rendered text's key).
  static Result<CompiledMapping> Compile(EventMapping mapping);

  const EventMapping& mapping() const { return mapping_; }
  const FieldPath& id_path() const { return id_path_; }
  // literals().size() == placeholders().size() + 1: L0, P1, L1, ..., Pn, Ln.
  const std::vector<std::string>& literals() const { return literals_; }
  const std::vector<FieldPath>& placeholders() const { return placeholders_; }
  const std::vector<FieldPath>& payload_paths() const { return payload_paths_; }
  const std::optional<FieldPath>& timestamp_path() const { return timestamp_path_; }

  // The payload's nesting: each node is a key with either a payload field
  // (field >= 0, an index into payload_paths()) or children.
  struct PayloadNode {
    std::string key;
    int field = -1;
    std::vector<PayloadNode> children;
  };
  const std::vector<PayloadNode>& payload_tree() const { return payload_tree_; }

 private:
  CompiledMapping() = default;
  EventMapping mapping_;
  FieldPath id_path_;
  std::vector<std::string> literals_;
  std::vector<FieldPath> placeholders_;
  std::vector<FieldPath> payload_paths_;
  std::optional<FieldPath> timestamp_path_;
  std::vector<PayloadNode> payload_tree_;
};

struct MapOptions {
  size_t max_bytes = 1 << 20;  // a larger event is rejected (too_large)
};

// Maps one event; on failure `error` has a stable reason (see above).
DecodeResult MapEvent(std::string_view json, const CompiledMapping& mapping,
                      const MapOptions& options = {});

// The template rule on its own: literals (n + 1) and rendered values (n)
// joined as described above.
std::string JoinTemplate(const std::vector<std::string>& literals,
                         const std::vector<std::string>& values);

// Seconds since the epoch from an RFC 3339 / ISO 8601 timestamp:
// "2024-01-15T10:30:00Z", "2024-01-15 10:30:00.25+02:00", "2024-01-15T10:30:00"
// (no offset: UTC). nullopt when it is not one.
std::optional<double> ParseTimestampSeconds(std::string_view text);

}  // namespace embedstream::pipeline

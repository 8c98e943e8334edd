#include "pipeline/event_mapping.h"

#include <charconv>
#include <cmath>
#include <set>
#include <utility>

#include <simdjson.h>

#include "core/json_writer.h"

namespace embedstream::pipeline {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

Error ConfigError(std::string setting, std::string what) {
  return Error(errc::invalid_argument, std::move(setting) + ": " + std::move(what));
}

Result<FieldPath> ParsePath(std::string_view setting, std::string_view text) {
  std::string_view t = Trim(text);
  if (t.empty()) return ConfigError(std::string(setting), "empty field path");
  FieldPath p;
  p.dotted.assign(t);
  size_t start = 0;
  while (true) {
    size_t dot = t.find('.', start);
    std::string_view key = t.substr(start, dot == std::string_view::npos ? t.npos : dot - start);
    if (key.empty()) {
      return ConfigError(std::string(setting),
                         "empty key in field path '" + p.dotted + "' (write a.b.c)");
    }
    p.keys.emplace_back(key);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return p;
}

Status ParseTemplate(std::string_view tpl, std::vector<std::string>& literals,
                     std::vector<FieldPath>& placeholders) {
  const std::string setting = "text_template";
  if (Trim(tpl).empty()) return ConfigError(setting, "empty template");
  literals.assign(1, std::string());
  for (size_t i = 0; i < tpl.size();) {
    char c = tpl[i];
    if (c == '{' && i + 1 < tpl.size() && tpl[i + 1] == '{') {
      literals.back() += '{';
      i += 2;
    } else if (c == '}' && i + 1 < tpl.size() && tpl[i + 1] == '}') {
      literals.back() += '}';
      i += 2;
    } else if (c == '}') {
      return ConfigError(setting, "unmatched '}' at offset " + std::to_string(i) +
                                      " (write '}}' for a literal brace)");
    } else if (c == '{') {
      size_t close = tpl.find_first_of("{}", i + 1);
      if (close == std::string_view::npos || tpl[close] == '{') {
        return ConfigError(setting, "unclosed '{' at offset " + std::to_string(i) +
                                        " (write '{{' for a literal brace)");
      }
      std::string_view inner = tpl.substr(i + 1, close - i - 1);
      if (Trim(inner).empty()) {
        return ConfigError(setting, "empty placeholder '{}' at offset " + std::to_string(i));
      }
      auto path = ParsePath(setting, inner);
      if (!path) return path.error();
      placeholders.push_back(std::move(*path));
      literals.emplace_back();
      i = close + 1;
    } else {
      literals.back() += c;
      ++i;
    }
  }
  if (placeholders.empty()) {
    return ConfigError(setting, "no {field} placeholder: every event would get the same text");
  }
  return Status::Ok();
}

void AddToTree(std::vector<CompiledMapping::PayloadNode>& nodes, const FieldPath& path,
               size_t depth, int field) {
  const std::string& key = path.keys[depth];
  CompiledMapping::PayloadNode* node = nullptr;
  for (auto& n : nodes) {
    if (n.key == key) node = &n;
  }
  if (node == nullptr) {
    nodes.push_back({key, -1, {}});
    node = &nodes.back();
  }
  if (depth + 1 == path.keys.size()) {
    node->field = field;
  } else {
    AddToTree(node->children, path, depth + 1, field);
  }
}

// Whitespace where two pieces meet collapses: `piece` loses its leading
// whitespace when `out` is empty or already ends in whitespace.
void AppendPiece(std::string& out, std::string_view piece) {
  if (out.empty() || IsSpace(out.back())) {
    while (!piece.empty() && IsSpace(piece.front())) piece.remove_prefix(1);
  }
  out.append(piece);
}

DecodeResult Fail(std::string reason, std::string detail) {
  DecodeResult r;
  r.error = {std::move(reason), std::move(detail)};
  return r;
}

// The DOM element at `path`, or nullopt when a key is missing or a step is
// not an object.
std::optional<simdjson::dom::element> Find(simdjson::dom::object root, const FieldPath& path) {
  simdjson::dom::object obj = root;
  simdjson::dom::element cur;
  for (size_t i = 0; i < path.keys.size(); ++i) {
    if (obj.at_key(path.keys[i]).get(cur)) return std::nullopt;
    if (i + 1 < path.keys.size() && cur.get_object().get(obj)) return std::nullopt;
  }
  return cur;
}

void AppendShortest(std::string& out, double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

// A placeholder's text: see the header for which values are empty.
std::string RenderValue(const std::optional<simdjson::dom::element>& v) {
  std::string out;
  if (!v) return out;
  switch (v->type()) {
    case simdjson::dom::element_type::STRING:
      out.assign(std::string_view(v->get_string().value_unsafe()));
      break;
    case simdjson::dom::element_type::INT64:
      out = std::to_string(v->get_int64().value_unsafe());
      break;
    case simdjson::dom::element_type::UINT64:
      out = std::to_string(v->get_uint64().value_unsafe());
      break;
    case simdjson::dom::element_type::DOUBLE:
      AppendShortest(out, v->get_double().value_unsafe());
      break;
    case simdjson::dom::element_type::BOOL:
      out = v->get_bool().value_unsafe() ? "true" : "false";
      break;
    default:  // null, object, array
      break;
  }
  if (Trim(out).empty()) out.clear();
  return out;
}

// The exact JSON text (numbers as written), compacted, of the value at
// `path` in an on-demand document; nullopt when missing.
std::optional<std::string> RawValue(simdjson::ondemand::document& doc, const FieldPath& path) {
  using namespace simdjson;
  doc.rewind();
  ondemand::object obj;
  if (doc.get_object().get(obj)) return std::nullopt;
  ondemand::value cur;
  for (size_t i = 0; i < path.keys.size(); ++i) {
    bool found = false;
    for (auto field_result : obj) {
      ondemand::field field;
      if (std::move(field_result).get(field)) return std::nullopt;
      std::string_view key;
      if (field.unescaped_key().get(key)) return std::nullopt;
      if (key == path.keys[i]) {
        cur = field.value();
        found = true;
        break;
      }
    }
    if (!found) return std::nullopt;
    if (i + 1 < path.keys.size() && cur.get_object().get(obj)) return std::nullopt;
  }
  ondemand::json_type type;
  if (cur.type().get(type)) return std::nullopt;
  std::string_view raw;
  if (type == ondemand::json_type::object || type == ondemand::json_type::array) {
    // simdjson 3.0 has raw_json() on objects and arrays, not on values.
    if (type == ondemand::json_type::object) {
      ondemand::object o;
      if (cur.get_object().get(o) || o.raw_json().get(raw)) return std::nullopt;
    } else {
      ondemand::array a;
      if (cur.get_array().get(a) || a.raw_json().get(raw)) return std::nullopt;
    }
    std::string out(raw.size(), '\0');
    size_t len = 0;
    if (simdjson::minify(raw.data(), raw.size(), out.data(), len)) return std::string(raw);
    out.resize(len);
    return out;
  }
  raw = cur.raw_json_token();
  return std::string(Trim(raw));
}

// Writes the nodes that have at least one present field; returns whether
// any did.
bool HasAny(const CompiledMapping::PayloadNode& node,
            const std::vector<std::optional<std::string>>& values) {
  if (node.field >= 0) return values[static_cast<size_t>(node.field)].has_value();
  for (const auto& c : node.children) {
    if (HasAny(c, values)) return true;
  }
  return false;
}

void WritePayload(JsonWriter& w, const std::vector<CompiledMapping::PayloadNode>& nodes,
                  const std::vector<std::optional<std::string>>& values) {
  for (const auto& n : nodes) {
    if (!HasAny(n, values)) continue;
    w.Key(n.key);
    if (n.field >= 0) {
      w.Raw(*values[static_cast<size_t>(n.field)]);
    } else {
      w.BeginObject();
      WritePayload(w, n.children, values);
      w.EndObject();
    }
  }
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool ReadDigits(std::string_view s, size_t& i, size_t n, int& out) {
  if (i + n > s.size()) return false;
  out = 0;
  for (size_t k = 0; k < n; ++k) {
    char c = s[i + k];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  i += n;
  return true;
}

bool Expect(std::string_view s, size_t& i, char c) {
  if (i >= s.size() || s[i] != c) return false;
  ++i;
  return true;
}

}  // namespace

Result<CompiledMapping> CompiledMapping::Compile(EventMapping mapping) {
  CompiledMapping m;
  auto id = ParsePath("id_field", mapping.id_field);
  if (!id) return id.error();
  m.id_path_ = std::move(*id);
  if (Status s = ParseTemplate(mapping.text_template, m.literals_, m.placeholders_); !s) {
    return s.error();
  }
  if (!Trim(mapping.timestamp_field).empty()) {
    auto ts = ParsePath("timestamp_field", mapping.timestamp_field);
    if (!ts) return ts.error();
    m.timestamp_path_ = std::move(*ts);
  }
  std::set<std::string> seen;
  for (const auto& f : mapping.payload_fields) {
    auto p = ParsePath("payload_fields", f);
    if (!p) return p.error();
    if (p->keys.front() == "text") {
      return ConfigError("payload_fields",
                         "'" + p->dotted + "' collides with the rendered text's key \"text\"");
    }
    if (!seen.insert(p->dotted).second) {
      return ConfigError("payload_fields", "'" + p->dotted + "' is listed twice");
    }
    for (const auto& other : m.payload_paths_) {
      const auto& a = other.keys.size() < p->keys.size() ? other : *p;
      const auto& b = other.keys.size() < p->keys.size() ? *p : other;
      if (std::equal(a.keys.begin(), a.keys.end(), b.keys.begin())) {
        return ConfigError("payload_fields",
                           "'" + b.dotted + "' is inside '" + a.dotted + "'; keep one of them");
      }
    }
    m.payload_paths_.push_back(std::move(*p));
  }
  for (size_t i = 0; i < m.payload_paths_.size(); ++i) {
    AddToTree(m.payload_tree_, m.payload_paths_[i], 0, static_cast<int>(i));
  }
  m.mapping_ = std::move(mapping);
  return m;
}

std::string JoinTemplate(const std::vector<std::string>& literals,
                         const std::vector<std::string>& values) {
  std::string out;
  bool any = false;
  for (size_t i = 0; i < values.size(); ++i) {
    if (Trim(values[i]).empty()) continue;
    // Before the first kept value: the outer text L0; later: the literal
    // just before this value (literals[i], as L0 precedes values[0]).
    AppendPiece(out, any ? literals[i] : literals.front());
    AppendPiece(out, values[i]);
    any = true;
  }
  if (!any) return {};
  AppendPiece(out, literals.back());
  while (!out.empty() && IsSpace(out.back())) out.pop_back();
  return out;
}

std::optional<double> ParseTimestampSeconds(std::string_view s) {
  s = Trim(s);
  size_t i = 0;
  int year, month, day, hour, minute, second;
  if (!ReadDigits(s, i, 4, year) || !Expect(s, i, '-') || !ReadDigits(s, i, 2, month) ||
      !Expect(s, i, '-') || !ReadDigits(s, i, 2, day)) {
    return std::nullopt;
  }
  if (i >= s.size() || (s[i] != 'T' && s[i] != 't' && s[i] != ' ')) return std::nullopt;
  ++i;
  if (!ReadDigits(s, i, 2, hour) || !Expect(s, i, ':') || !ReadDigits(s, i, 2, minute) ||
      !Expect(s, i, ':') || !ReadDigits(s, i, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  double fraction = 0;
  if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
    ++i;
    double scale = 0.1;
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      fraction += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return std::nullopt;
  }
  int offset_minutes = 0;
  if (i < s.size()) {
    if (s[i] == 'Z' || s[i] == 'z') {
      ++i;
    } else if (s[i] == '+' || s[i] == '-') {
      int sign = s[i] == '-' ? -1 : 1;
      ++i;
      int oh, om;
      if (!ReadDigits(s, i, 2, oh)) return std::nullopt;
      if (i < s.size() && s[i] == ':') ++i;
      if (!ReadDigits(s, i, 2, om) || oh > 23 || om > 59) return std::nullopt;
      offset_minutes = sign * (oh * 60 + om);
    } else {
      return std::nullopt;
    }
  }
  if (i != s.size()) return std::nullopt;
  int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
  return static_cast<double>(secs) + fraction;
}

DecodeResult MapEvent(std::string_view json, const CompiledMapping& mapping,
                      const MapOptions& options) {
  if (json.size() > options.max_bytes) {
    return Fail("too_large", "event of " + std::to_string(json.size()) +
                                 " bytes exceeds the limit of " +
                                 std::to_string(options.max_bytes));
  }
  if (!simdjson::validate_utf8(json.data(), json.size())) {
    return Fail("invalid_utf8", "the event is not valid UTF-8");
  }
  // The DOM validates the whole event and gives typed values; the on-demand
  // pass below only copies payload values with their numbers as written.
  thread_local simdjson::dom::parser dom_parser;
  simdjson::dom::element doc;
  if (auto err = dom_parser.parse(json.data(), json.size()).get(doc); err) {
    return Fail("invalid_json", simdjson::error_message(err));
  }
  simdjson::dom::object root;
  if (doc.get_object().get(root)) return Fail("invalid_json", "expected a JSON object");

  InputRecord rec;
  const FieldPath& id_path = mapping.id_path();
  auto id = Find(root, id_path);
  if (!id || id->is_null()) {
    return Fail("missing_id", "no '" + id_path.dotted + "' field");
  }
  if (id->is_string()) {
    rec.id.assign(std::string_view(id->get_string().value_unsafe()));
    if (rec.id.empty()) return Fail("missing_id", "'" + id_path.dotted + "' is empty");
  } else if (id->is_int64()) {
    rec.id = std::to_string(id->get_int64().value_unsafe());
  } else if (id->is_uint64()) {
    rec.id = std::to_string(id->get_uint64().value_unsafe());
  } else {
    return Fail("wrong_type", "'" + id_path.dotted + "' must be a string or an integer");
  }

  std::vector<std::string> values;
  values.reserve(mapping.placeholders().size());
  for (const auto& p : mapping.placeholders()) values.push_back(RenderValue(Find(root, p)));
  rec.text = JoinTemplate(mapping.literals(), values);
  if (rec.text.empty()) {
    std::string fields;
    for (const auto& p : mapping.placeholders()) {
      if (!fields.empty()) fields += ", ";
      fields += p.dotted;
    }
    return Fail("empty_text",
                "the text template rendered nothing: " + fields + " missing or empty");
  }

  if (const auto& ts_path = mapping.timestamp_path()) {
    if (auto ts = Find(root, *ts_path)) {
      if (ts->is_number()) {
        double v = ts->get_double().value_unsafe();
        if (std::isfinite(v)) rec.timestamp = v;
      } else if (ts->is_string()) {
        rec.timestamp = ParseTimestampSeconds(std::string_view(ts->get_string().value_unsafe()));
      }
    }
  }

  std::vector<std::optional<std::string>> payload(mapping.payload_paths().size());
  if (!payload.empty()) {
    thread_local simdjson::ondemand::parser od_parser;
    thread_local std::string padded;
    padded.assign(json);
    padded.resize(json.size() + simdjson::SIMDJSON_PADDING);
    simdjson::ondemand::document od;
    if (auto err = od_parser.iterate(padded.data(), json.size(), padded.size()).get(od); err) {
      return Fail("invalid_json", simdjson::error_message(err));
    }
    for (size_t i = 0; i < payload.size(); ++i) {
      payload[i] = RawValue(od, mapping.payload_paths()[i]);
    }
  }
  JsonWriter w;
  w.BeginObject();
  WritePayload(w, mapping.payload_tree(), payload);
  w.Key("text").String(rec.text);
  w.EndObject();
  rec.metadata_json = w.Take();

  DecodeResult r;
  r.record = std::move(rec);
  return r;
}

}  // namespace embedstream::pipeline

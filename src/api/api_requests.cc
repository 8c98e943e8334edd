#include "api/api_requests.h"

#include <cfloat>
#include <cmath>
#include <optional>

#include <fmt/format.h>
#include <simdjson.h>
#include <nlohmann/json.hpp>

#include "core/uuid.h"

namespace embedstream::api {
namespace {

using json = nlohmann::json;

const char* TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    case json::value_t::discarded:
      return "invalid";
    default:
      return "number";
  }
}

struct TooDeep {};

// Parses a JSON object body: invalid_utf8, invalid_json (also a number out of
// range, e.g. 1e400), too_deep (nesting over kMaxJsonDepth, refused while
// parsing, so no deep tree ever exists to be copied or destroyed recursively),
// wrong_type (not an object), unknown_field (a key outside `allowed`).
std::variant<json, ApiError> ParseObject(std::string_view body,
                                         std::initializer_list<const char*> allowed) {
  if (!simdjson::validate_utf8(body.data(), body.size())) {
    return BadRequest("invalid_utf8", "the request body is not valid UTF-8");
  }
  json doc;
  try {
    // `depth` is how many containers are open around the one starting.
    doc = json::parse(body, [](int depth, json::parse_event_t event, json&) {
      const bool opens =
          event == json::parse_event_t::object_start || event == json::parse_event_t::array_start;
      if (opens && depth >= kMaxJsonDepth) throw TooDeep{};
      return true;
    });
  } catch (const TooDeep&) {
    return BadRequest("too_deep",
                      fmt::format("the request body nests objects and arrays more than {} "
                                  "levels deep",
                                  kMaxJsonDepth));
  } catch (const json::exception& e) {  // parse_error, and out_of_range for 1e400
    return BadRequest("invalid_json", fmt::format("the request body is not JSON: {}", e.what()));
  }
  if (!doc.is_object()) {
    return BadRequest("wrong_type",
                      fmt::format("the request body must be a JSON object, not {}", TypeName(doc)));
  }
  for (const auto& [key, value] : doc.items()) {
    bool known = false;
    for (const char* name : allowed) known = known || key == name;
    if (!known) {
      std::string names;
      for (const char* name : allowed) names.append(names.empty() ? "" : ", ").append(name);
      return BadRequest("unknown_field",
                        fmt::format("unknown field '{}' (allowed: {})", key, names));
    }
  }
  return doc;
}

bool HasControlChars(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

std::optional<size_t> ParseCursor(std::string_view cursor) {
  if (cursor.empty() || cursor.size() > 12) return std::nullopt;
  size_t v = 0;
  for (char c : cursor) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  return v;
}

std::string FormatCursor(size_t offset) { return std::to_string(offset); }

ApiError BadRequest(std::string error, std::string detail) {
  return ApiError{400, std::move(error), std::move(detail)};
}

std::variant<MessageRequest, ApiError> ParseMessageRequest(std::string_view body) {
  auto parsed = ParseObject(body, {"message", "text", "id", "metadata", "user_id"});
  if (auto* err = std::get_if<ApiError>(&parsed)) return *err;
  const json& doc = std::get<json>(parsed);
  MessageRequest out;

  const bool has_message = doc.contains("message");
  const bool has_text = doc.contains("text");
  if (has_message && has_text) {
    return BadRequest("conflicting_fields",
                      "give the text as either \"message\" or \"text\", not both");
  }
  if (!has_message && !has_text) {
    return BadRequest("missing_text", "the body needs a \"message\" (or \"text\") string");
  }
  const char* text_key = has_message ? "message" : "text";
  const json& text = doc.at(text_key);
  if (!text.is_string()) {
    return BadRequest("wrong_type",
                      fmt::format("\"{}\" must be a string, not {}", text_key, TypeName(text)));
  }
  out.message.text = text.get<std::string>();
  if (out.message.text.find_first_not_of(" \t\r\n\f\v") == std::string::npos) {
    return BadRequest("empty_text", fmt::format("\"{}\" is empty", text_key));
  }

  if (auto it = doc.find("id"); it != doc.end()) {
    if (!it->is_string()) {
      return BadRequest("wrong_type",
                        fmt::format("\"id\" must be a string, not {}", TypeName(*it)));
    }
    out.message.id = it->get<std::string>();
    if (out.message.id.empty() || out.message.id.size() > kMaxIdBytes ||
        HasControlChars(out.message.id)) {
      return BadRequest(
          "invalid_id",
          fmt::format("\"id\" must be 1..{} bytes without control characters", kMaxIdBytes));
    }
  } else {
    out.message.id = FormatUuid(RandomUuidV4());
  }

  json metadata;
  if (auto it = doc.find("metadata"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) {
      return BadRequest("invalid_metadata",
                        fmt::format("\"metadata\" must be a JSON object, not {}", TypeName(*it)));
    }
    metadata = *it;
  }
  if (auto it = doc.find("user_id"); it != doc.end() && !it->is_null()) {
    if (!it->is_string()) {
      return BadRequest("wrong_type",
                        fmt::format("\"user_id\" must be a string, not {}", TypeName(*it)));
    }
    out.user_id = it->get<std::string>();
    metadata["user_id"] = out.user_id;
  } else if (metadata.is_object()) {
    if (auto u = metadata.find("user_id"); u != metadata.end() && u->is_string()) {
      out.user_id = u->get<std::string>();
    }
  }
  if (!metadata.is_null()) {
    out.message.metadata_json = metadata.dump();
    if (out.message.metadata_json.size() > kMaxMetadataBytes) {
      return BadRequest("invalid_metadata",
                        fmt::format("\"metadata\" is {} bytes serialised; the limit "
                                    "is {}",
                                    out.message.metadata_json.size(), kMaxMetadataBytes));
    }
  }
  return out;
}

std::variant<MessageRequest, ApiError> ParseDocumentRequest(
    std::string_view body, std::string_view content_type,
    const std::map<std::string, std::string>& query) {
  const std::string_view base = content_type.substr(0, content_type.find(';'));
  if (base.find("json") != std::string_view::npos) return ParseMessageRequest(body);
  if (!simdjson::validate_utf8(body.data(), body.size())) {
    return BadRequest("invalid_utf8", "the document is not valid UTF-8");
  }
  // The same rules as a JSON body, from the query parameters.
  json doc = json::object();
  doc["text"] = std::string(body);
  if (auto it = query.find("id"); it != query.end()) doc["id"] = it->second;
  if (auto it = query.find("user_id"); it != query.end()) doc["user_id"] = it->second;
  if (auto it = query.find("metadata"); it != query.end()) {
    json meta = json::parse(it->second, nullptr, false);
    if (meta.is_discarded() || !meta.is_object()) {
      return BadRequest("invalid_metadata", "?metadata= must be a JSON object");
    }
    doc["metadata"] = std::move(meta);
  }
  for (const auto& key : {"id", "user_id"}) {
    if (doc.contains(key) && !simdjson::validate_utf8(doc[key].get_ref<const std::string&>())) {
      return BadRequest("invalid_utf8", fmt::format("?{}= is not valid UTF-8", key));
    }
  }
  return ParseMessageRequest(doc.dump());
}

std::variant<SearchRequest, ApiError> ParseSearchRequest(std::string_view body, size_t dim) {
  auto parsed = ParseObject(body, {"query", "vector", "limit", "filter", "cursor", "group_by"});
  if (auto* err = std::get_if<ApiError>(&parsed)) return *err;
  const json& doc = std::get<json>(parsed);
  SearchRequest out;
  const bool has_query = doc.contains("query") && !doc.at("query").is_null();
  const bool has_vector = doc.contains("vector") && !doc.at("vector").is_null();
  if (has_query == has_vector) {
    return BadRequest("missing_query",
                      "give either \"query\" (text) or \"vector\" (numbers), one of them");
  }
  if (has_query) {
    const json& q = doc.at("query");
    if (!q.is_string()) {
      return BadRequest("wrong_type",
                        fmt::format("\"query\" must be a string, not {}", TypeName(q)));
    }
    out.query = q.get<std::string>();
    if (out.query.find_first_not_of(" \t\r\n\f\v") == std::string::npos) {
      return BadRequest("missing_query", "\"query\" is empty");
    }
  } else {
    const json& v = doc.at("vector");
    if (!v.is_array()) {
      return BadRequest("invalid_vector",
                        fmt::format("\"vector\" must be an array, not {}", TypeName(v)));
    }
    if (v.size() != dim) {
      return BadRequest(
          "invalid_vector",
          fmt::format("\"vector\" has {} numbers; the model has {} dimensions", v.size(), dim));
    }
    out.vector.reserve(dim);
    float norm2 = 0;  // in float, as the search normalises it
    for (const auto& x : v) {
      if (!x.is_number()) return BadRequest("invalid_vector", "\"vector\" must hold only numbers");
      const auto f = x.get<float>();
      if (!std::isfinite(f))
        return BadRequest("invalid_vector", "\"vector\" holds a non-finite number");
      norm2 += f * f;
      out.vector.push_back(f);
    }
    if (norm2 == 0) return BadRequest("invalid_vector", "\"vector\" is all zeros");
    // Too small (1e-40s) or too large to normalise in float: the scores would
    // be NaN (null) in no order.
    if (!(norm2 >= FLT_MIN) || !std::isfinite(norm2)) {
      return BadRequest("invalid_vector",
                        "\"vector\" cannot be normalised: its length is out of float range");
    }
  }
  if (auto it = doc.find("limit"); it != doc.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 ||
        it->get<int64_t>() > static_cast<int64_t>(kMaxLimit)) {
      return BadRequest("invalid_limit",
                        fmt::format("\"limit\" must be an integer in [1, {}]", kMaxLimit));
    }
    out.limit = it->get<size_t>();
  }
  out.filter.group_by_parent = true;
  if (auto it = doc.find("group_by"); it != doc.end() && !it->is_null()) {
    const bool parent = it->is_string() && it->get_ref<const std::string&>() == "parent";
    const bool none = it->is_string() && it->get_ref<const std::string&>() == "none";
    if (!parent && !none) {
      return BadRequest("invalid_group_by",
                        "\"group_by\" must be \"parent\" (the best chunk of each document, the "
                        "default) or \"none\" (every chunk)");
    }
    out.filter.group_by_parent = parent;
  }
  if (auto it = doc.find("cursor"); it != doc.end() && !it->is_null()) {
    // The "next" of an earlier page: how many of the ranked hits it skips.
    auto offset = it->is_string() ? ParseCursor(it->get_ref<const std::string&>()) : std::nullopt;
    if (!offset || *offset >= out.limit) {
      return BadRequest("invalid_cursor",
                        "\"cursor\" must be the \"next\" string of an earlier page of this "
                        "search (same query and limit)");
    }
    out.offset = *offset;
  }
  if (auto it = doc.find("filter"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) {
      return BadRequest(
          "invalid_filter",
          fmt::format("\"filter\" must be an object of field: value, not {}", TypeName(*it)));
    }
    for (const auto& [field, value] : it->items()) {
      if (value.is_object() || value.is_array()) {
        return BadRequest(
            "invalid_filter",
            fmt::format("filter \"{}\": only equality with a string, number, boolean or "
                        "null is supported",
                        field));
      }
      std::string_view path = field;
      if (path.starts_with("metadata.")) path.remove_prefix(9);
      if (path.empty() || path.front() == '.' || path.back() == '.' ||
          path.find("..") != std::string_view::npos) {
        return BadRequest("invalid_filter",
                          fmt::format("filter field \"{}\" is not a field path", field));
      }
      out.filter.equals.emplace_back(field, value.dump());
    }
  }
  return out;
}

}  // namespace embedstream::api

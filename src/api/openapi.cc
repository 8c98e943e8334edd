#include "api/openapi.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <regex>
#include <stdexcept>
#include <string>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "server/http_server.h"
#include "server/http_types.h"

namespace embedstream::api {
namespace {

using ordered_json = nlohmann::ordered_json;

struct ConvertError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string Where(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1);
}

// A plain (unquoted, untagged) scalar as the YAML 1.2 core schema reads it.
ordered_json PlainScalar(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kOctal("0o[0-7]+");
  static const std::regex kHex("0x[0-9a-fA-F]+");
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  static const std::regex kInf(R"([-+]?\.(inf|Inf|INF))");
  static const std::regex kNan(R"(\.(nan|NaN|NAN))");
  auto integer = [&](std::string_view digits, int base) -> ordered_json {
    const bool negative = !digits.empty() && digits.front() == '-';
    if (!digits.empty() && (digits.front() == '-' || digits.front() == '+')) {
      digits.remove_prefix(1);
    }
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
    if (ec != std::errc() || end != digits.data() + digits.size()) {
      throw ConvertError("integer out of range at " + Where(node) + ": " + s);
    }
    if (!negative) return v;
    if (v > static_cast<uint64_t>(INT64_MAX) + 1) {
      throw ConvertError("integer out of range at " + Where(node) + ": " + s);
    }
    return v == static_cast<uint64_t>(INT64_MAX) + 1 ? INT64_MIN : -static_cast<int64_t>(v);
  };
  if (std::regex_match(s, kInt)) return integer(s, 10);
  if (std::regex_match(s, kOctal)) return integer(std::string_view(s).substr(2), 8);
  if (std::regex_match(s, kHex)) return integer(std::string_view(s).substr(2), 16);
  if (std::regex_match(s, kFloat)) {
    const double v = std::strtod(s.c_str(), nullptr);
    if (!std::isfinite(v)) throw ConvertError("number out of range at " + Where(node) + ": " + s);
    return v;
  }
  if (std::regex_match(s, kInf) || std::regex_match(s, kNan)) {
    throw ConvertError("JSON has no " + s + " (" + Where(node) + ")");
  }
  return s;
}

ordered_json Convert(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      // "?": plain and untagged; "!": quoted or a block scalar; else an
      // explicit tag.
      if (tag == "?") return PlainScalar(node);
      if (tag == "!" || tag == "tag:yaml.org,2002:str") return node.Scalar();
      throw ConvertError("unsupported tag " + tag + " at " + Where(node));
    }
    case YAML::NodeType::Sequence: {
      ordered_json out = ordered_json::array();
      for (const auto& item : node) out.push_back(Convert(item));
      return out;
    }
    case YAML::NodeType::Map: {
      ordered_json out = ordered_json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar())
          throw ConvertError("a mapping key that is not a scalar at " + Where(kv.first));
        out[kv.first.Scalar()] = Convert(kv.second);
      }
      return out;
    }
  }
  throw ConvertError("unknown YAML node type at " + Where(node));
}

}  // namespace

Result<std::string> YamlToJson(std::string_view yaml) {
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    return Convert(root).dump();
  } catch (const YAML::Exception& e) {
    return Error(errc::invalid_argument, std::string("invalid YAML: ") + e.what());
  } catch (const ConvertError& e) {
    return Error(errc::invalid_argument, e.what());
  } catch (const nlohmann::json::exception& e) {  // e.g. invalid UTF-8 in a string
    return Error(errc::invalid_argument, e.what());
  }
}

const Result<std::string>& OpenApiJson() {
  static const Result<std::string> json = YamlToJson(OpenApiYaml());
  return json;
}

void RegisterOpenApi(server::HttpServer& http) {
  http.Route("GET", "/openapi.json", [](const server::HttpRequest&) {
    const Result<std::string>& json = OpenApiJson();
    if (!json) {
      return server::JsonError(
          500, "internal",
          "the compiled-in OpenAPI document does not convert to JSON: " + json.error().ToString());
    }
    return server::JsonOk(*json);
  });
}

}  // namespace embedstream::api

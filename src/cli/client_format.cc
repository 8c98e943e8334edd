#include "cli/client_format.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <sstream>

namespace embedstream::cli {
namespace internal {

using nlohmann::json;

std::optional<json> ParseJson(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

Error NotApiJson(std::string_view what) {
  return Error(errc::corrupt,
               "the server's answer is not the JSON the API describes (" + std::string(what) + ")");
}

// A JSON value for a table cell: strings without quotes, the rest as JSON.
std::string Cell(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

}  // namespace internal

namespace {

using internal::Cell;
using internal::NotApiJson;
using internal::ParseJson;
using nlohmann::json;
using nlohmann::ordered_json;

// Code points in a UTF-8 string (continuation bytes not counted).
size_t Width(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string Pad(std::string s, size_t width) {
  const size_t w = Width(s);
  if (w < width) s.append(width - w, ' ');
  return s;
}

std::string TimeCell(const json& v) {
  return v.is_number() ? FormatUnixTime(v.get<double>()) : Cell(v);
}

void FlattenInto(const json& j, const std::string& prefix,
                 std::vector<std::pair<std::string, std::string>>& out) {
  if (j.is_object() && !j.empty()) {
    for (const auto& [k, v] : j.items()) FlattenInto(v, prefix.empty() ? k : prefix + "." + k, out);
    return;
  }
  out.emplace_back(prefix, j.is_string() ? j.get<std::string>() : j.dump());
}

}  // namespace

Result<FilterTerm> ParseFilterTerm(std::string_view arg) {
  const auto eq = arg.find('=');
  if (eq == std::string_view::npos) {
    return Error(errc::invalid_argument,
                 "--filter '" + std::string(arg) + "': expected key=value, e.g. metadata.lang=en");
  }
  std::string_view key = arg.substr(0, eq);
  while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
  while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
  if (key.empty())
    return Error(errc::invalid_argument, "--filter '" + std::string(arg) + "': empty key");
  const std::string_view value = arg.substr(eq + 1);
  FilterTerm term{std::string(key), {}};
  if (auto j = ParseJson(value)) {
    if (j->is_object() || j->is_array()) {
      return Error(errc::invalid_argument,
                   "--filter '" + std::string(arg) +
                       "': the value must be a string, number, true, false or null (filters "
                       "match JSON scalars)");
    }
    term.value_json = j->dump();
  } else {
    term.value_json = json(std::string(value)).dump();
  }
  return term;
}

Result<std::string> BuildSearchBody(const std::string& query, int limit,
                                    const std::vector<std::string>& filters) {
  ordered_json body;
  body["query"] = query;
  body["limit"] = limit;
  if (!filters.empty()) {
    ordered_json filter = ordered_json::object();
    for (const auto& f : filters) {
      auto term = ParseFilterTerm(f);
      if (!term) return term.error();
      if (filter.contains(term->key))
        return Error(errc::invalid_argument, "--filter: key '" + term->key + "' given twice");
      filter[term->key] = ordered_json::parse(term->value_json);
    }
    body["filter"] = std::move(filter);
  }
  return body.dump();
}

Result<std::string> BuildCreateBody(const std::string& text, const std::string& id,
                                    const std::string& metadata_json, const std::string& user_id) {
  ordered_json body;
  body["message"] = text;
  if (!id.empty()) body["id"] = id;
  if (!metadata_json.empty()) {
    auto j = ordered_json::parse(metadata_json, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return Error(errc::invalid_argument,
                   "--metadata must be a JSON object, e.g. '{\"lang\":\"en\"}'");
    }
    body["metadata"] = std::move(j);
  }
  if (!user_id.empty()) body["user_id"] = user_id;
  return body.dump();
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string FormatUnixTime(double seconds) {
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string Ellipsize(std::string_view text, size_t max_chars) {
  std::string out;
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    const bool starts_char = (u & 0xC0) != 0x80;
    if (starts_char) {
      if (chars == max_chars) {
        // Cut: replace the last character with the ellipsis.
        while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80)
          out.pop_back();
        if (!out.empty()) out.pop_back();
        out += "\xE2\x80\xA6";  // …
        return out;
      }
      ++chars;
    }
    out += (u < 0x20 || u == 0x7F) ? ' ' : text[i];
  }
  return out;
}

Result<std::string> FormatMessageList(std::string_view body) {
  const auto j = ParseJson(body);
  if (!j || !j->is_object() || !(*j)["messages"].is_array()) return NotApiJson("GET /messages");
  const json& messages = (*j)["messages"];
  constexpr size_t kIdMax = 36, kTextMax = 60;
  size_t id_w = 2, status_w = 6;
  for (const auto& m : messages) {
    id_w = std::max(id_w, std::min(kIdMax, Width(Cell(m.value("id", json())))));
    status_w = std::max(status_w, Width(Cell(m.value("status", json()))));
  }
  std::ostringstream out;
  const long total = j->value("total", -1L);
  const long offset = j->value("offset", 0L);
  if (messages.empty()) {
    out << (total > 0 ? "no messages at offset " + std::to_string(offset) + " (total " +
                            std::to_string(total) + ")"
                      : std::string("no messages"))
        << "\n";
    return out.str();
  }
  out << Pad("ID", id_w) << "  " << Pad("STATUS", status_w) << "  " << Pad("CREATED (UTC)", 19)
      << "  TEXT\n";
  for (const auto& m : messages) {
    if (!m.is_object()) return NotApiJson("GET /messages: a message is not an object");
    out << Pad(Ellipsize(Cell(m.value("id", json())), kIdMax), id_w) << "  "
        << Pad(Cell(m.value("status", json())), status_w) << "  "
        << Pad(TimeCell(m.value("created_at", json())), 19) << "  "
        << Ellipsize(Cell(m.value("text", json())), kTextMax) << "\n";
  }
  out << offset + 1 << "-" << offset + static_cast<long>(messages.size());
  if (total >= 0) out << " of " << total;
  out << "\n";
  return out.str();
}

Result<std::string> FormatMessage(std::string_view body) {
  const auto j = ParseJson(body);
  if (!j || !j->is_object()) return NotApiJson("GET /messages/{id}");
  static const std::vector<std::string> kOrder = {
      "id", "status", "reason", "model_name", "created_at", "embedded_at", "metadata", "text"};
  std::vector<std::pair<std::string, std::string>> rows;
  auto add = [&](const std::string& k, const json& v) {
    std::string text = Cell(v);
    if (k.size() > 3 && k.compare(k.size() - 3, 3, "_at") == 0 && v.is_number())
      text = FormatUnixTime(v.get<double>()) + " UTC (" + v.dump() + ")";
    if (k == "metadata" && v.is_null()) text = "null";
    rows.emplace_back(k, std::move(text));
  };
  for (const auto& k : kOrder) {
    if (k != "text" && j->contains(k)) add(k, (*j)[k]);
  }
  for (const auto& [k, v] : j->items()) {
    if (std::find(kOrder.begin(), kOrder.end(), k) == kOrder.end()) add(k, v);
  }
  if (j->contains("text")) add("text", (*j)["text"]);  // last: it may be long
  size_t key_w = 0;
  for (const auto& row : rows) key_w = std::max(key_w, row.first.size() + 1);
  std::ostringstream out;
  for (const auto& [k, v] : rows) out << Pad(k + ":", key_w) << " " << v << "\n";
  return out.str();
}

Result<std::string> FormatSearchResults(std::string_view body) {
  const auto j = ParseJson(body);
  if (!j || !j->is_object() || !(*j)["results"].is_array())
    return NotApiJson("POST /embeddings/search");
  const json& results = (*j)["results"];
  std::ostringstream out;
  std::string took;
  if ((*j)["took_ms"].is_number()) {
    char ms[32];
    std::snprintf(ms, sizeof(ms), " in %.1f ms", (*j)["took_ms"].get<double>());
    took = ms;
  }
  const std::string model =
      (*j)["model"].is_string() ? " (" + (*j)["model"].get<std::string>() + ")" : std::string();
  if (results.empty()) {
    out << "no results" << took << model << "\n";
    return out.str();
  }
  constexpr size_t kIdMax = 36, kTextMax = 70;
  size_t id_w = 2;
  for (const auto& r : results) {
    if (!r.is_object()) return NotApiJson("POST /embeddings/search: a result is not an object");
    id_w = std::max(id_w, std::min(kIdMax, Width(Cell(r.value("id", json())))));
  }
  out << "RANK  SCORE   " << Pad("ID", id_w) << "  TEXT\n";
  int rank = 0;
  for (const auto& r : results) {
    char score[32] = "";
    const json s = r.value("score", json());
    if (s.is_number()) std::snprintf(score, sizeof(score), "%.4f", s.get<double>());
    out << Pad(std::to_string(++rank), 4) << "  " << Pad(score, 6) << "  "
        << Pad(Ellipsize(Cell(r.value("id", json())), kIdMax), id_w) << "  "
        << Ellipsize(Cell(r.value("text", json())), kTextMax) << "\n";
  }
  out << results.size() << (results.size() == 1 ? " result" : " results") << took << model << "\n";
  return out.str();
}

Result<std::string> FormatKeyValues(std::string_view body) {
  const auto j = ParseJson(body);
  if (!j || !j->is_object()) return NotApiJson("expected a JSON object");
  std::vector<std::pair<std::string, std::string>> rows;
  FlattenInto(*j, "", rows);
  size_t key_w = 0;
  for (const auto& row : rows) key_w = std::max(key_w, row.first.size() + 1);
  std::ostringstream out;
  for (const auto& [k, v] : rows) out << "  " << Pad(k + ":", key_w) << " " << v << "\n";
  return out.str();
}

std::string FormatEventLine(std::string_view id, std::string_view event, std::string_view data,
                            bool json_only) {
  std::string line;
  if (!json_only) {
    line.append(id.empty() ? "-" : id);
    line += ' ';
    line.append(event);
    line += ' ';
  }
  for (char c : data) line += c == '\n' ? ' ' : c;  // one line per event
  return line;
}

}  // namespace embedstream::cli

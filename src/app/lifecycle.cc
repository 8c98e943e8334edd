#include "app/lifecycle.h"

#include <nlohmann/json.hpp>

#include "core/json_writer.h"

namespace embedstream::app {

void Lifecycle::Publish(const char* type, const std::string& id, const std::string& user_id,
                        const std::string& key, std::string data_json) const {
  if (hub_ == nullptr) return;
  hub_->PublishEvent({.type = type,
                      .message_id = id,
                      .user_id = user_id,
                      .key = key.empty() ? id : key,
                      .data_json = std::move(data_json)});
}

void Lifecycle::Received(const std::string& id, const std::string& user_id,
                         const std::string& key) const {
  Publish("message_received", id, user_id, key, {});
}

void Lifecycle::Processing(const std::string& id, const std::string& user_id,
                           const std::string& key) const {
  Publish("message_processing", id, user_id, key, {});
}

void Lifecycle::Stage(int stage, const std::string& id, const std::string& user_id,
                      const std::string& key, uint32_t chunks) const {
  static constexpr const char* kNames[kStages] = {"tokenize", "embed", "store"};
  JsonWriter w;
  w.BeginObject().Key("stage").Int(stage).Key("stages").Int(kStages).Key("name").String(
      stage >= 1 && stage <= kStages ? kNames[stage - 1] : "");
  if (chunks > 0) w.Key("chunks").Uint(chunks);
  w.EndObject();
  Publish("stage_completed", id, user_id, key, w.Take());
}

void Lifecycle::Deleted(const std::string& id, const std::string& user_id,
                        const std::string& key) const {
  Publish("message_deleted", id, user_id, key, {});
}

void Lifecycle::Completed(const std::string& id, const std::string& user_id, const std::string& key,
                          const std::string& model, size_t dim) const {
  JsonWriter w;
  w.BeginObject().Key("model").String(model).Key("dim").Uint(dim).EndObject();
  Publish("message_completed", id, user_id, key, w.Take());
}

void Lifecycle::Failed(const std::string& id, const std::string& user_id, const std::string& key,
                       const std::string& error) const {
  JsonWriter w;
  w.BeginObject().Key("error").String(error).EndObject();
  Publish("message_failed", id, user_id, key, w.Take());
}

std::string UserIdOf(const std::string& metadata_json) {
  if (metadata_json.empty()) return {};
  auto doc = nlohmann::json::parse(metadata_json, nullptr, false);
  if (!doc.is_object()) return {};
  auto it = doc.find("user_id");
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace embedstream::app

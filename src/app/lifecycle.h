#pragma once
// Lifecycle events of one message, the same for every path into the system
// (HTTP POST /messages, Kafka records): message_received, message_processing,
// stage_completed 1/3 tokenize, 2/3 embed, 3/3 store, then message_completed
// or message_failed (docs/API.md). A thin layer over SseHub::Publish that
// keeps the payloads in one place. Null hub: every call is a no-op.

#include <string>

#include "server/sse_hub.h"

namespace embedstream::app {

class Lifecycle {
 public:
  static constexpr int kStages = 3;  // tokenize, embed, store

  explicit Lifecycle(server::EventPublisher* hub) : hub_(hub) {}

  // `key` is the /events?key= filter value (empty: the message id).
  void Received(const std::string& id, const std::string& user_id, const std::string& key) const;
  void Processing(const std::string& id, const std::string& user_id, const std::string& key) const;
  // stage 1..kStages: 1 "tokenize", 2 "embed", 3 "store".
  // `chunks`: the chunks of a document this stage covered (0: not chunked).
  void Stage(int stage, const std::string& id, const std::string& user_id, const std::string& key,
             uint32_t chunks = 0) const;
  // The id (and its chunks) is gone from every sink.
  void Deleted(const std::string& id, const std::string& user_id, const std::string& key) const;
  void Completed(const std::string& id, const std::string& user_id, const std::string& key,
                 const std::string& model, size_t dim) const;
  void Failed(const std::string& id, const std::string& user_id, const std::string& key,
              const std::string& error) const;

 private:
  void Publish(const char* type, const std::string& id, const std::string& user_id,
               const std::string& key, std::string data_json) const;
  server::EventPublisher* hub_;
};

// metadata.user_id when it is a string (the /events?user_id= filter), else "".
std::string UserIdOf(const std::string& metadata_json);

}  // namespace embedstream::app

#pragma once
// The message and search routes of `embedstream serve` (docs/API.md):
//   POST /messages, GET /messages, GET /messages/{id}, DELETE /messages/{id},
//   POST /documents, GET /status, POST /embeddings/search.
// Request parsing is separate from the routes (ParseMessageRequest,
// ParseSearchRequest) so the rules are unit-tested without a server.
//
// Threads: the routes run on the HTTP io threads; POST /messages answers from
// the thread that commits the message (serve: the MessageService writer), POST /embeddings/search
// from the ApiRoutes' own search thread (the query is embedded there, so the
// io thread never waits on the encoder).

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "api/api_requests.h"
#include "core/result.h"
#include "model/sentence_encoder.h"
#include "pipeline/chunker.h"
#include "server/http_server.h"
#include "store/embedded_store.h"

namespace embedstream::api {

// One message as the API's JSON object.
std::string MessageJson(const store::Message& m);

// A search over another vector store (search.backend postgres): the k
// nearest to q passing `filter`, nearest first. Called on the search thread
// only. invalid_argument answers 400 invalid_filter, other errors 503.
using SearchBackend = std::function<Result<std::vector<store::SearchHit>>(
    const std::vector<float>& q, size_t k, const store::Filter& filter)>;

// The write side of POST /messages (serve: MessageService::Submit): queues a
// validated message and calls `done` once it is committed or failed. False,
// and `done` is not called, when the queue is full or the writer stopped.
using PutCallback = std::function<void(Result<store::PutOutcome>)>;
using SubmitMessage =
    std::function<bool(store::NewMessage message, std::string user_id, PutCallback done)>;

struct ApiOptions {
  std::string model_name;
  // Lists and search results stop before their JSON passes this (at least
  // one item is always sent); "next" then resumes (http.max_response_bytes).
  size_t max_response_bytes = 8 << 20;
  size_t max_search_queue = 256;
  SearchBackend search_backend;  // empty: the embedded store
  std::string search_backend_name = "embedded";
  // POST /documents: how the HTTP source chunks (the 202 tells how many
  // chunks a document becomes; on_overflow reject is a 400 too_long).
  pipeline::ChunkingOptions chunking;
  // DELETE /messages/{id} committed the delete (serve: wake the outbox,
  // SSE message_deleted).
  std::function<void(const std::string& id)> on_deleted;
  // POST /documents refused a document as too long (counted in /stats).
  std::function<void()> on_too_long;
  // ingest.mode kafka: "kafka" (the 202 of POST /messages then says
  // "ingest":"kafka" instead of "created", which only the store can tell).
  std::string ingest = "store";
  // DELETE /messages/{id} through something else than the store (ingest.mode
  // kafka: a delete record on the input topic): `done` answers the request
  // (ok -> 202). `user_id` is the request's ?user_id= (may be empty).
  std::function<void(const std::string& id, const std::string& user_id,
                     std::function<void(Status)> done)>
      delete_message;
  // Extra members of GET /status: name -> a function giving a JSON value.
  std::vector<std::pair<std::string, std::function<std::string()>>> extra_status;
};

class ApiRoutes {
 public:
  // `submit` may be empty: POST /messages then answers 503 (no write side).
  ApiRoutes(store::EmbeddedStore& store, SubmitMessage submit, model::SentenceEncoder& encoder,
            ApiOptions options);
  ~ApiRoutes();  // stops the search thread; answers queued searches with 503
  ApiRoutes(const ApiRoutes&) = delete;
  ApiRoutes& operator=(const ApiRoutes&) = delete;

  // Registers the routes on `server` (before its Start). The routes refer to
  // this object: stop the server before destroying it.
  void Register(server::HttpServer& server);
  // The "store" object of /stats and the body of /status.
  std::string StatusJson();

 private:
  void PostMessage(const server::HttpRequest& req, server::Respond respond);
  void PostDocument(const server::HttpRequest& req, server::Respond respond);
  void DeleteMessage(const server::HttpRequest& req, server::Respond respond);
  // On the search thread: how many chunks the text becomes (400 too_long
  // under on_overflow: reject), then Submit (the 202 says the count when
  // `report_chunks`).
  void PlanAndSubmit(MessageRequest request, std::shared_ptr<server::Respond> respond,
                     bool report_chunks);
  // Commits a parsed message through `submit_` and answers 202 (or 503).
  void Submit(MessageRequest request, std::shared_ptr<server::Respond> respond,
              std::optional<uint32_t> chunks);
  server::HttpResponse ListMessages(const server::HttpRequest& req);
  server::HttpResponse GetMessage(const server::HttpRequest& req);
  void Search(const server::HttpRequest& req, server::Respond respond);
  server::HttpResponse RunSearch(const SearchRequest& request);
  void SearchLoop();

  store::EmbeddedStore& store_;
  SubmitMessage submit_;
  model::SentenceEncoder& encoder_;
  ApiOptions options_;

  std::mutex search_mu_;
  std::condition_variable search_cv_;
  std::deque<std::function<void()>> search_queue_;  // guarded by search_mu_
  bool search_stop_ = false;                        // guarded by search_mu_
  std::thread search_thread_;
};

}  // namespace embedstream::api

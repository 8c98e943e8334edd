#pragma once
// QdrantSink: writes embeddings to a Qdrant collection over its REST API
// (libcurl, one keep-alive connection) and searches it. Connect() creates the
// collection when missing ({"vectors": {"size": dim, "distance": "Cosine"}})
// and refuses one whose size or distance differs. Upsert() sends batches of
// `batch_size` points with `PUT /collections/{c}/points?wait=true`; a batch
// that Qdrant refuses as bad input (400/422) is bisected down to single points
// so only the refused points come back in UpsertOutcome::rejected and every
// other point is stored. Point ids: a UUID is kept (lower case); any other id
// maps to UuidV5(EmbedstreamNamespace(), id), the same id PostgresSink
// stores, and the original id goes into payload "source_id". Upserts are
// idempotent (a replay overwrites the points with the same content).
//
// Errors returned by Upsert never concern a single record (those are in
// `rejected`): unavailable = Qdrant down, timing out, 5xx/429, or refusing the
// API key (401/403; see last_http_status()): pause and retry, never DLQ.
//
// One CURL handle; not thread-safe: one thread calls everything (open one
// sink per thread).
//
// Example:
//   auto opts = QdrantSinkOptions::FromEnv();
//   opts.dim = 384;
//   auto sink = QdrantSink::Connect(opts);
//   if (!sink) return sink.error();
//   auto out = (*sink)->Upsert(points);      // out->rejected: send to the DLQ
//   auto hits = (*sink)->Search(q, 5, *QdrantSink::FilterToQdrant({{"metadata.lang", "\"en\""}}));

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace embedstream::sinks {

struct QdrantSinkOptions {
  std::string url = "http://127.0.0.1:6333";  // no trailing path
  std::string collection = "ecommerce_embeddings";
  std::string api_key;  // sent as `api-key: K` when not empty
  size_t dim = 0;       // from the model; required
  std::string distance = "Cosine";
  size_t batch_size = 256;  // points per upsert request
  int timeout_ms = 10000;   // whole request
  int connect_timeout_ms = 3000;

  // QDRANT_URL, else QDRANT_HOST + QDRANT_PORT (default 127.0.0.1:6333);
  // QDRANT_API_KEY; QDRANT_COLLECTION. A port that is not a number keeps 6333.
  static QdrantSinkOptions FromEnv();
};

struct QdrantPoint {
  std::string id;             // a UUID, or any string (mapped to a UUIDv5)
  std::vector<float> vector;  // options.dim floats
  std::string payload_json;   // a JSON object (mapped fields + text), or empty for {}
};

struct QdrantRejected {
  size_t index = 0;     // into the span given to Upsert
  std::string message;  // Qdrant's error, or why the sink refused it locally
};

struct UpsertOutcome {
  size_t stored = 0;                     // points Qdrant accepted
  std::vector<QdrantRejected> rejected;  // ascending index; each refused alone
};

struct QdrantHit {
  std::string id;            // the point id (a UUID, or an unsigned integer as text)
  std::string source_id;     // payload "source_id" when the id was mapped, else empty
  float score = 0;           // cosine similarity for a Cosine collection
  std::string payload_json;  // "{}" when the point has none
};

class QdrantSink {
 public:
  // GET the collection; create it when missing (a 409 from a concurrent
  // creator is fine). invalid_argument: bad options, the API key refused
  // (401/403), or the collection exists with another size or distance (the
  // message names both). Qdrant unreachable (or 5xx/429) is an outage, not an
  // error here: the sink is returned, and the collection is checked (created)
  // before its first Upsert or Search, which fail as unavailable until then.
  static Result<std::unique_ptr<QdrantSink>> Connect(const QdrantSinkOptions& options);
  ~QdrantSink();
  QdrantSink(const QdrantSink&) = delete;
  QdrantSink& operator=(const QdrantSink&) = delete;

  // Upserts points, batch_size per request. Points the sink refuses locally
  // (wrong dimension, NaN/inf, empty id, payload not a JSON object) and
  // points Qdrant refuses (found by bisecting a refused batch) are listed in
  // `rejected`; all others are stored. A collection deleted underneath (404)
  // is recreated once. Error (nothing about records): unavailable, see above;
  // internal: an answer that is not Qdrant's. A failed call may have stored
  // its first batches; retrying it is safe.
  Result<UpsertOutcome> Upsert(std::span<const QdrantPoint> points);

  // Upsert, then delete the points matching `filter_json` (the points of
  // another chunk count of the documents written, deleted documents), in one
  // request (POST /points/batch?wait=true): readers never see the upsert
  // without the delete. A batch Qdrant refuses as bad input falls back to
  // Upsert (bisecting to find the refused points) and DeleteWhere. Empty
  // filter: Upsert. Errors as Upsert; a failed call may have applied both.
  Result<UpsertOutcome> UpsertAndDelete(std::span<const QdrantPoint> points,
                                        const std::string& filter_json);

  // Deletes the points matching a Qdrant Filter object (POST
  // /points/delete?wait=true); none matching is fine. A missing collection
  // has nothing to delete. Errors: unavailable (as for Upsert), internal.
  Status DeleteWhere(const std::string& filter_json);

  // The k points nearest to q (POST /points/query), best first, with payload.
  // `filter_json`: a Qdrant Filter object (see FilterToQdrant) or empty.
  // invalid_argument: wrong dimension, bad filter (Qdrant's 400 message);
  // not_found: no such collection; unavailable: as for Upsert.
  Result<std::vector<QdrantHit>> Search(const std::vector<float>& q, size_t k,
                                        const std::string& filter_json = {});

  // Our metadata equality filter (dotted path -> JSON literal, as
  // store::Filter) as a Qdrant Filter: {"must":[{"key":"product.category",
  // "match":{"value":"X"}}]}. "metadata." is stripped (payload holds the
  // metadata fields at the top level). Strings, integers and booleans ->
  // match; other numbers -> range gte = lte = x; null -> is_null.
  // invalid_argument: a literal that is not JSON, an array or an object.
  // Empty input -> "" (no filter).
  static Result<std::string> FilterToQdrant(
      const std::vector<std::pair<std::string, std::string>>& equals);

  // The point id for a message id: itself when it is a UUID (lower case),
  // else UuidV5(EmbedstreamNamespace(), id) (= PostgresSink::StoredId).
  static std::string PointId(const std::string& id, bool* is_uuid = nullptr);

  // HTTP status of the last answer (0: none, transport error). 401/403 tell a
  // refused API key apart from an outage when a call returns unavailable.
  long last_http_status() const;
  // The last call failed for the size of its body: HTTP 413, or a body over
  // 1 MiB cut off in transit (connection reset, timeout, no answer), as
  // proxies refuse large bodies. Smaller pieces may go through.
  bool last_failure_may_be_size() const;
  const QdrantSinkOptions& options() const { return options_; }

 private:
  explicit QdrantSink(QdrantSinkOptions options);
  // Each valid point as its JSON object (pieces[i]); invalid ones in
  // out.rejected. Returns the indexes of the valid ones.
  std::vector<size_t> Serialize(std::span<const QdrantPoint> points,
                                std::vector<std::string>& pieces, UpsertOutcome& out) const;
  struct Impl;
  QdrantSinkOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedstream::sinks

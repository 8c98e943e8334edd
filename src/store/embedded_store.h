#pragma once
// EmbeddedStore: the durable message + vector store behind POST /messages,
// GET /messages, /status and /embeddings/search when no external vector DB is
// configured.
//
// Owns, under StoreOptions::dir: store.db (SQLite, WAL: messages, text,
// metadata, status, vectors as float32 BLOBs, model name) and the HNSW
// snapshot index.hnsw + index.meta. SQLite is the source of truth; the index
// is rebuilt or caught up from it on Open.
//
// Threads: any number of HTTP threads (PutMessage, Get, List, Stats, Search)
// and one embedding worker (NextPending, StoreEmbeddings, MarkFailed). All
// methods are thread-safe: writes go through one writer connection under a
// mutex, reads through a reader connection under another (WAL lets them run
// concurrently), and the index has its own shared_mutex.
//
// Example:
//   auto store = EmbeddedStore::Open({.dir = "data", .model_name = "minilm"});
//   (*store)->PutMessage("m1", "hello", R"({"user_id":"u1"})");
//   auto batch = (*store)->NextPending(64);          // worker
//   (*store)->StoreEmbeddings({{"m1", vec}}, "minilm");
//   auto hits = (*store)->Search(query_vec, 10, {});

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace embedstream::store {

namespace internal {
class SqliteDb;
class SqliteStmt;
class VectorIndex;
}  // namespace internal

struct StoreOptions {
  std::filesystem::path dir;
  size_t dim = 384;
  std::string model_name;             // default for StoreEmbeddings with an empty name
  size_t exact_search_below = 40000;  // fewer live vectors than this: brute force (~3 ms)
  size_t hnsw_m = 16;
  size_t hnsw_ef_construction = 200;
  size_t hnsw_ef_search = 256;  // recall@10 0.969 at 1M clustered (bench/search)
  // true: synchronous=FULL, each commit fsyncs the WAL (survives power loss).
  // false: synchronous=NORMAL (survives kill -9, may lose the last commits on
  // power loss). See README.md for the measured cost.
  bool sync_full = true;
  // Save an index snapshot after this many index changes (0: only on close).
  size_t snapshot_every_changes = 50000;
};

// deleted: a tombstone row (text and vector gone) kept so the index catch-up
// and the outbox see the delete; Get, List and Stats skip it.
enum class MessageStatus { pending = 0, embedded = 1, failed = 2, deleted = 3 };
// "pending" | "embedded" | "failed" | "deleted"
const char* MessageStatusName(MessageStatus s);

struct Message {
  std::string id;
  std::string text;
  std::string metadata_json;  // a JSON object, or "" when none
  MessageStatus status = MessageStatus::pending;
  std::string reason;      // why it failed (status failed)
  std::string model_name;  // model of the stored vector (status embedded)
  double created_at = 0;   // unix seconds of the first put
  double embedded_at = 0;  // 0 unless embedded
  double queued_at = 0;    // unix seconds it (last) became pending
  // Bumped when the text changes; StoreEmbeddings with a stale revision is
  // ignored, so a vector of an old text never lands on a new one.
  int64_t revision = 0;
  // Chunks: a document cut into chunk_count > 1 chunks keeps its whole text
  // here (no vector); each chunk is a row "<id>#<n>" with parent_id = id.
  std::string parent_id;  // set on chunk rows only
  uint32_t chunk_index = 0;
  uint32_t chunk_count = 1;
  uint32_t char_start = 0, char_end = 0;
  uint32_t chunks_embedded = 0;  // Get of a document: its chunk rows stored
};

// One vector for StoreEmbeddings. revision 0 applies whatever the text now is.
struct Embedding {
  std::string id;
  std::vector<float> vector;
  int64_t revision = 0;
};

// One message for PutMessages.
struct NewMessage {
  NewMessage() = default;
  NewMessage(std::string id_, std::string text_, std::string metadata_json_ = {},
             uint32_t chunk_count_ = 1)
      : id(std::move(id_)),
        text(std::move(text_)),
        metadata_json(std::move(metadata_json_)),
        chunk_count(chunk_count_) {}
  std::string id;
  std::string text;
  std::string metadata_json;  // a JSON object, or "" for none
  uint32_t chunk_count = 1;   // chunks the text will become (GET shows k of n)
};

// One operation of WriteDocuments: a document (or one chunk of it) with its
// vector, or a delete of a document and all its chunks.
struct DocumentWrite {
  bool remove = false;
  std::string id;             // the document's id
  std::string text;           // the chunk's text (the whole text when not chunked)
  std::string document_text;  // chunked, upsert mode: the whole text for the document's row
  std::string metadata_json;
  uint32_t chunk_index = 0, chunk_count = 1, char_start = 0, char_end = 0;
  std::vector<float> vector;  // upserts
  int64_t revision = 0;       // outbox mode: the document's revision (0: any)
};

struct PutOutcome {
  bool created = false;   // a new id
  bool requeued = false;  // an existing id whose text changed: pending again
  MessageStatus status = MessageStatus::pending;  // the status after the put
};

// One already-embedded message for PutEmbedded (the store as a sink).
struct EmbeddedMessage {
  std::string id;
  std::string text;
  std::string metadata_json;
  std::vector<float> vector;
};

struct SearchHit {
  std::string id;
  float score = 0;  // cosine similarity
  std::string text;
  std::string metadata_json;
  std::string parent_id;  // a chunk's document, else empty
  uint32_t chunk_index = 0, chunk_count = 1, char_start = 0, char_end = 0;
};

// Conjunction of metadata equalities: path "metadata.user_id" or "user_id"
// (dots walk nested objects) -> JSON literal, e.g. "\"u1\"", "3", "true".
struct Filter {
  std::vector<std::pair<std::string, std::string>> equals;
  // Only the best chunk of each document (search group_by: parent).
  bool group_by_parent = false;
  bool empty() const { return equals.empty(); }
};

struct StoreCounts {
  size_t total = 0, pending = 0, embedded = 0, failed = 0;
  double oldest_pending_age_s = 0;  // 0 when nothing is pending
};

class EmbeddedStore {
 public:
  static Result<std::unique_ptr<EmbeddedStore>> Open(const StoreOptions& options);
  ~EmbeddedStore();  // saves an index snapshot
  EmbeddedStore(const EmbeddedStore&) = delete;
  EmbeddedStore& operator=(const EmbeddedStore&) = delete;

  // Upsert by id, committed (and fsynced per sync_full) before returning.
  // true: new id. false: the id existed; identical text changes nothing
  // (metadata is refreshed), a changed text re-queues it as pending.
  Result<bool> PutMessage(const std::string& id, const std::string& text,
                          const std::string& metadata_json);
  // PutMessage for many messages in one transaction (one fsync): group
  // commit for the HTTP write side. Items are applied in order (a repeated id
  // sees the earlier item). Validates every item first; an invalid one fails
  // the whole call and nothing is written.
  Result<std::vector<PutOutcome>> PutMessages(std::span<const NewMessage> messages);
  // Upserts messages with their vectors as embedded, in one transaction (the
  // store as a sink of the Kafka pipeline). A replay of the same id and text
  // rewrites the same row. Returns how many rows were written.
  Result<size_t> PutEmbedded(std::span<const EmbeddedMessage> messages,
                             const std::string& model_name);
  // Up to limit pending messages, oldest queued first. Does not claim them:
  // meant for the single embedding worker.
  Result<std::vector<Message>> NextPending(size_t limit);
  // Stores the vectors (normalised) in one transaction, marks the rows
  // embedded with model_name, then updates the index. Like MarkDelivered,
  // the commit is not fsynced by itself (data derived from the outbox: the
  // next fsynced commit makes it durable; power loss can only make the
  // outbox deliver those messages again). Returns how many rows
  // were updated (unknown ids and stale revisions are skipped).
  Result<size_t> StoreEmbeddings(const std::vector<Embedding>& embeddings,
                                 const std::string& model_name);
  Status MarkFailed(const std::string& id, const std::string& reason);

  // The store as a sink of documents and deletes, in order, in one
  // transaction (search never sees a mix of a document's old and new
  // chunks). An upsert of a document of n chunks marks deleted its rows of
  // another chunk count (chunks past the new count, or the single row of a
  // document now chunked); a delete removes the document and its chunks (an
  // unknown id is fine). Upsert mode (`outbox` false) writes the document's
  // row too; outbox mode (HTTP ingest, the document's row is the message)
  // applies only to the message's current revision. Returns rows changed.
  Result<size_t> WriteDocuments(std::span<const DocumentWrite> ops, const std::string& model_name,
                                bool outbox);
  // DELETE /messages/{id}: the message and its chunks leave search at once,
  // and the delete enters the outbox (durable, fsynced per sync_full) to
  // reach the other sinks. true: the id existed.
  Result<bool> DeleteMessage(const std::string& id);

  // The outbox of HTTP ingest: messages whose current revision has not been
  // delivered to every sink of its pipeline (MarkDelivered), in the order
  // they were queued, after `cursor`, which moves past the rows returned. A
  // message re-queued with a new text comes again (later in the order).
  // Rows written by PutEmbedded are delivered already.
  struct OutboxCursor {
    double queued_at = -1;
    int64_t row_id = 0;
  };
  Result<std::vector<Message>> NextOutbox(OutboxCursor& cursor, size_t limit);
  // Every sink has these (id, revision): they leave the outbox. A message
  // still pending (no sink stored a vector here) becomes `embedded` with
  // model_name and no vector; failed ones stay failed. A stale revision
  // changes nothing. Returns the rows updated.
  Result<size_t> MarkDelivered(std::span<const std::pair<std::string, int64_t>> delivered,
                               const std::string& model_name);

  Result<std::optional<Message>> Get(const std::string& id);
  // Newest first. Stops early once the rows read hold over max_bytes (id,
  // text and metadata; the row that crosses it is kept, so a page is never
  // empty while rows remain): memory is bounded in bytes, not only rows.
  Result<std::vector<Message>> List(size_t limit, size_t offset, size_t max_bytes = SIZE_MAX);
  Result<StoreCounts> Stats();
  // Top-k by cosine among embedded messages passing filter.
  Result<std::vector<SearchHit>> Search(const std::vector<float>& query, size_t k,
                                        const Filter& filter);
  // A page of the same ranking: hits [skip, k), stopping early (cut = true)
  // once the hits read hold over max_bytes (the hit crossing it is kept). The
  // skipped hits' texts are not read.
  struct SearchPage {
    std::vector<SearchHit> hits;
    bool cut = false;
  };
  Result<SearchPage> SearchPaged(const std::vector<float>& query, size_t k, const Filter& filter,
                                 size_t skip, size_t max_bytes);

  // Writes the index snapshot now (also done periodically and on close).
  Status SaveSnapshot();
  size_t indexed_count() const;

 private:
  struct Impl;
  explicit EmbeddedStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedstream::store

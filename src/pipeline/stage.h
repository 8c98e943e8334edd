#pragma once
// The pieces a pipeline Runtime connects: a Source of records, an Embedder,
// Sinks that store embedded records, and Listeners that watch (events,
// metrics, logs). Free of any client library, so every rule of the runtime
// is unit-tested with fakes (tests/unit/pipeline/runtime_test.cc).
//
//   Source::Read -> Record -> token-budget batch -> Embedder -> every Sink
//     -> Source::Ack          (every sink has it)
//     -> Source::Reject       (the record's fault: decode error, a sink
//                              refused it retry_attempts times, too large)
//
// A Sink's result tells the record's fault (WriteResult::refused: those
// items go to the dead letters) from the sink's (kUnavailable: retried with
// backoff behind a circuit breaker, intake pauses, never a dead letter) and
// from a size refusal (kTooLarge: the batch is split in halves; one record
// alone too large is a dead letter with reason `too_large`).

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/bert_tokenizer.h"

namespace embedstream::pipeline {

// One record on its way through the runtime.
//
// A document longer than the model's limit becomes several records, its
// chunks (chunk_count > 1): each keeps the document's id, handle and
// metadata, holds its chunk's text and span, and shares the whole text
// (`document`). The source is acked once per document, after its last chunk.
struct Record {
  enum class Op : uint8_t {
    kUpsert,  // store (replacing every chunk the id had)
    kDelete,  // remove the id and all its chunks from every sink
  };
  Op op = Op::kUpsert;
  std::string id;
  std::string text;
  std::string metadata_json;   // a JSON object, or empty
  bool mapped = false;         // metadata_json is a mapped payload that holds "text"
  std::string input_source;    // seed 000 input_source
  double input_timestamp = 0;  // seconds since the epoch (seed 000 input_timestamp)
  // When the record arrived (its batch is embedded by arrival + max_wait);
  // the default (epoch) means "when Read returned it".
  std::chrono::steady_clock::time_point arrival{};
  std::string user_id;    // lifecycle events: /events?user_id=
  std::string event_key;  // lifecycle events: /events?key=
  // The source's own reference (an offset slot, a row, a waiting request).
  uint64_t handle = 0;
  // The bytes as read, for a dead letter (may be empty).
  std::string original_key;
  std::string original_value;
  bool has_original_key = false;

  // Chunking (pipeline/chunker.h): a whole text is chunk 0 of 1.
  uint32_t chunk_index = 0;
  uint32_t chunk_count = 1;
  uint32_t char_start = 0;                      // the chunk's span in the document, in code points
  uint32_t char_end = 0;                        // (0, 0): the whole text
  bool truncated = false;                       // on_overflow truncate cut this text
  std::shared_ptr<const std::string> document;  // the whole text, when chunked

  bool chunked() const { return chunk_count > 1; }
  bool deleted() const { return op == Op::kDelete; }
  // The id a sink stores this record under: the id, or "<id>#<n>" for chunk n.
  std::string ChunkId() const;
  // The whole text of the document this record is a chunk of.
  const std::string& DocumentText() const { return document ? *document : text; }

  // What the record holds in memory, for pipeline.max_inflight_bytes.
  size_t Bytes() const;
};

// Why a record goes to the dead letters instead of the sinks.
struct Rejection {
  std::string reason;  // stable code: invalid_json, sink_rejected, too_large, ...
  std::string stage;   // decode | <sink name>
  std::string detail;  // for people
  int attempts = 1;    // writes tried before giving up
};

struct DeadLetter {
  const Record* record = nullptr;
  Rejection why;
};

// The result of one write. Exactly one of: every item stored except
// `refused` (kOk); the sink is unavailable and nothing can be said of any
// item (kUnavailable: retried, never the records' fault); the batch is too
// large for the sink as a whole (kTooLarge: split and written again).
struct WriteResult {
  enum class Kind { kOk, kUnavailable, kTooLarge };
  Kind kind = Kind::kOk;
  std::string error;                                    // kUnavailable, kTooLarge
  std::vector<std::pair<size_t, std::string>> refused;  // kOk: (item index, why)

  static WriteResult Ok() { return {}; }
  static WriteResult Unavailable(std::string why) {
    return {Kind::kUnavailable, std::move(why), {}};
  }
  static WriteResult TooLarge(std::string why) { return {Kind::kTooLarge, std::move(why), {}}; }
  bool ok() const { return kind == Kind::kOk; }
};

struct SinkItem {
  const Record* record = nullptr;
  std::span<const float> vector;  // empty when the runtime does not embed
};

// Stores embedded records. Write runs on the sink's own thread (one thread
// per sink: a sink needs no locking of its own), one batch at a time, in
// batch order. It must be idempotent: a write may be repeated after an
// error (at-least-once).
class Sink {
 public:
  virtual ~Sink() = default;
  virtual const std::string& name() const = 0;
  virtual WriteResult Write(std::span<const SinkItem> items) = 0;
};

// What Source::Read returns.
struct ReadBatch {
  std::vector<Record> records;
  // Records that could not be decoded: straight to Reject (in read order
  // with the others, so acks stay in order).
  std::vector<std::pair<Record, Rejection>> rejected;
  bool end = false;  // a finite source (a file, stdin) has nothing more
};

// Where records come from, and where they are answered. Read, Ack, Pause and
// Resume run on the runtime's intake thread (the thread that calls
// Runtime::Run), so a Kafka consumer stays on one thread; Reject runs on the
// runtime's dead-letter thread.
class Source {
 public:
  virtual ~Source() = default;
  virtual const std::string& name() const = 0;
  // Up to `max_records`, waiting at most `wait` when none is ready. While
  // paused it must still serve its client (Kafka: poll, heartbeats,
  // rebalances) and should return no new records.
  virtual ReadBatch Read(size_t max_records, std::chrono::milliseconds wait) = 0;
  // Every sink (or the dead letters) has these records: commit offsets, mark
  // rows done, answer callers. Called in read order.
  virtual void Ack(std::span<const Record* const> records) = 0;
  // Writes dead letters (a DLQ topic, a failed mark on a row, an error line).
  // kUnavailable: retried like a sink, the records are not acked meanwhile.
  // Refused letters are retried as well: a source must not refuse for good
  // (Kafka cuts a letter too large for its topic instead).
  virtual WriteResult Reject(std::span<const DeadLetter> letters) = 0;
  virtual void Pause() {}
  virtual void Resume() {}
  // After the runtime stopped (same thread): a last commit of what was
  // acked, leave the group, roll back what was read and not acked.
  virtual void Close() {}
};

// The model, as the runtime sees it: Tokenize on the intake thread, Embed on
// the encoder thread.
class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual size_t dim() const = 0;
  virtual std::vector<int32_t> Tokenize(std::string_view text) = 0;
  // `out`: tokens.size() * dim() floats, L2-normalised rows.
  virtual void Embed(const std::vector<std::vector<int32_t>>& tokens, float* out) = 0;

  // For chunking (pipeline/chunker.h), on the intake thread: the text's
  // wordpieces without specials, grouped by word with each word's bytes.
  // false: this embedder cannot (texts are then truncated as by Tokenize).
  virtual bool TokenizeWords(std::string_view /*text*/, std::vector<int32_t>& /*pieces*/,
                             std::vector<text::TokenizedWord>& /*words*/) {
    return false;
  }
  // Tokens per sequence the model takes, [CLS]/[SEP] included.
  virtual size_t max_tokens() const { return 0; }
  // A sequence from pieces: [CLS] pieces [SEP].
  virtual std::vector<int32_t> Frame(std::span<const int32_t> pieces) {
    return {pieces.begin(), pieces.end()};
  }
};

// Watches a runtime. Calls come from its threads (named per method); keep
// them quick and thread-safe.
class Listener {
 public:
  virtual ~Listener() = default;
  virtual void OnRead(const Record&) {}       // intake thread, a decoded record
  virtual void OnEmbedding(const Record&) {}  // encoder thread, before the batch is embedded
  virtual void OnEmbedded(const Record&) {}   // encoder thread, after
  // One encoder batch: records, tokens, time in Embed (encoder thread).
  virtual void OnBatch(size_t /*records*/, size_t /*tokens*/,
                       std::chrono::duration<double> /*took*/) {}
  // Every sink has it (the last sink's thread); the source's Ack follows.
  virtual void OnStored(const Record&) {}
  virtual void OnRejected(const Record&, const Rejection&) {}  // dead-letter thread, once written
  // A batch is done: every record stored (OnStored) or a dead letter
  // (OnRejected); its acks follow. On the thread that finished it (the last
  // sink's, or the dead-letter thread). May block: e.g. until the batch's
  // events are durable on an events bus, so no ack overtakes them.
  virtual void OnBatchDone() {}
  virtual void OnAcked(const Record&) {}  // intake thread
  // A sink (or "dlq") became unavailable (`available` false) or recovered.
  virtual void OnSinkAvailability(const std::string& /*sink*/, bool /*available*/,
                                  const std::string& /*why*/) {}
  virtual void OnPause(bool /*paused*/, const std::string& /*why*/) {}  // intake thread
  // One call of a sink's Write (its thread).
  virtual void OnSinkWrite(const std::string& /*sink*/, size_t /*items*/,
                           std::chrono::duration<double> /*took*/) {}
};

}  // namespace embedstream::pipeline

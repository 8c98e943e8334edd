#include "pipeline/runtime.h"

#include <algorithm>
#include <climits>
#include <functional>
#include <optional>

#include "core/logging.h"

namespace embedstream::pipeline {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

size_t Record::Bytes() const {
  // The shared document is counted with its first chunk.
  return sizeof(Record) + id.size() + text.size() + metadata_json.size() + input_source.size() +
         user_id.size() + event_key.size() + original_key.size() + original_value.size() +
         (document && chunk_index == 0 ? document->size() : 0);
}

std::string Record::ChunkId() const {
  if (chunk_count <= 1) return id;
  return id + "#" + std::to_string(chunk_index);
}

// One batch from Flush until it is acked.
struct Runtime::Batch {
  uint64_t seq = 0;
  std::vector<Record> records;
  std::vector<std::optional<Rejection>> decode_error;  // per record
  std::vector<std::vector<int32_t>> tokens;            // per record (live ones)
  size_t token_count = 0;
  size_t bytes = 0;
  std::vector<size_t> live;             // records that go to the sinks
  std::vector<float> vectors;           // live.size() * dim
  std::vector<SinkItem> items;          // per live record
  std::unordered_set<std::string> ids;  // of the records (intake thread, until Flush)
  // Per sink: (position in `live`, why) refused for good; each sink thread
  // writes its own slot, the last one merges.
  std::vector<std::vector<std::pair<size_t, Rejection>>> sink_refused;
  std::atomic<size_t> sinks_left{0};
  std::atomic<bool> cancelled{false};  // a sink or the dead letters gave up (stop)
  std::vector<DeadLetter> letters;
  bool done = false;  // guarded by Runtime::mu_
};

// A thread with a queue of batches and a guard for the writes it does.
class Runtime::Worker {
 public:
  using Job = std::function<void(Worker&, const std::shared_ptr<Batch>&)>;

  Worker(std::string name, SinkGuardOptions options, SinkGuard::AvailabilityFn on_availability,
         Job job)
      : guard(std::move(name), std::move(options), std::move(on_availability)),
        job_(std::move(job)),
        thread_([this] { Loop(); }) {}
  ~Worker() { Stop(); }

  void Push(std::shared_ptr<Batch> batch) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(batch));
    }
    cv_.notify_one();
  }
  // Finishes the queue (writes return at once once the guard is cancelled).
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  SinkGuard guard;

 private:
  void Loop() {
    for (;;) {
      std::shared_ptr<Batch> batch;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        batch = std::move(queue_.front());
        queue_.pop_front();
      }
      job_(*this, batch);
    }
  }

  Job job_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Batch>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

Runtime::Runtime(Source& source, Embedder* embedder, std::vector<Sink*> sinks,
                 RuntimeOptions options)
    : source_(source), embedder_(embedder), sinks_(std::move(sinks)), options_(options) {
  if (embedder_ == nullptr) options_.embed = false;
  options_.batch_max_tokens = std::max<size_t>(1, options_.batch_max_tokens);
  options_.read_max_records = std::max<size_t>(1, options_.read_max_records);
  options_.batch_max_records = std::max<size_t>(1, options_.batch_max_records);
  options_.max_queued_batches = std::max<size_t>(1, options_.max_queued_batches);
  auto availability = [this](const std::string& name) {
    return [this, name](bool available, const std::string& why) {
      auto plog = GetLogger("pipeline");
      if (available) {
        plog->info("{} -> {}: sink available again", source_.name(), name);
      } else {
        plog->warn("{} -> {}: sink unavailable ({}); intake paused, retrying", source_.name(), name,
                   why);
      }
      for (auto* l : listeners_) l->OnSinkAvailability(name, available, why);
    };
  };
  for (size_t i = 0; i < sinks_.size(); ++i) {
    Sink* sink = sinks_[i];
    workers_.push_back(std::make_unique<Worker>(
        sink->name(), options_.guard, availability(sink->name()),
        [this, sink, i](Worker& w, const std::shared_ptr<Batch>& batch) {
          std::vector<SinkItem> part;
          auto out = w.guard.Write(batch->items.size(), [&](std::span<const size_t> idx) {
            std::span<const SinkItem> items(batch->items);
            if (idx.size() != batch->items.size()) {
              part.clear();
              for (size_t j : idx) part.push_back(batch->items[j]);
              items = part;
            }
            const auto t0 = Clock::now();
            WriteResult r = sink->Write(items);
            for (auto* l : listeners_)
              l->OnSinkWrite(sink->name(), items.size(), Clock::now() - t0);
            return r;
          });
          if (out.cancelled) batch->cancelled = true;
          batch->sink_refused[i] = std::move(out.refused);
          SinkDone(batch);
        }));
  }
  SinkGuardOptions dlq = options_.guard;
  dlq.retry_attempts = INT_MAX;  // dead letters are retried until written, never dropped
  dead_letters_ = std::make_unique<Worker>(
      "dlq", dlq, availability("dlq"), [this](Worker& w, const std::shared_ptr<Batch>& batch) {
        std::vector<DeadLetter> part;
        auto out = w.guard.Write(batch->letters.size(), [&](std::span<const size_t> idx) {
          part.clear();
          for (size_t j : idx) part.push_back(batch->letters[j]);
          return source_.Reject(part);
        });
        if (out.cancelled || !out.refused.empty()) {
          if (!out.refused.empty()) {
            GetLogger("pipeline")
                ->error("{}: {} dead letters refused ({}); their records are not acked",
                        source_.name(), out.refused.size(), out.refused.front().second.detail);
          }
          batch->cancelled = true;
        } else {
          for (const auto& letter : batch->letters) {
            for (auto* l : listeners_) l->OnRejected(*letter.record, letter.why);
          }
          stats_.rejected.fetch_add(batch->letters.size(), std::memory_order_relaxed);
        }
        Finish(batch);
      });
}

Runtime::~Runtime() {
  abandon_ = true;
  for (auto& w : workers_) w->guard.Cancel();
  if (dead_letters_) dead_letters_->guard.Cancel();
  {
    std::lock_guard lock(mu_);
    encoder_stop_ = true;
  }
  cv_.notify_all();
  if (encoder_.joinable()) encoder_.join();
  workers_.clear();
  dead_letters_.reset();
}

void Runtime::AddListener(Listener* listener) {
  if (listener != nullptr) listeners_.push_back(listener);
}

const std::string& Runtime::source_name() const { return source_.name(); }

std::vector<const SinkGuard*> Runtime::guards() const {
  std::vector<const SinkGuard*> out;
  for (const auto& w : workers_) out.push_back(&w->guard);
  if (dead_letters_) out.push_back(&dead_letters_->guard);
  return out;
}

void Runtime::Split(Record&& r, std::optional<Rejection>& error, std::vector<Record>& parts,
                    std::vector<std::vector<int32_t>>& seqs) {
  if (error || r.deleted() || !options_.embed) {
    parts.push_back(std::move(r));
    seqs.emplace_back();
    return;
  }
  thread_local std::vector<int32_t> pieces;
  thread_local std::vector<text::TokenizedWord> words;
  if (!embedder_->TokenizeWords(r.text, pieces, words)) {
    seqs.push_back(embedder_->Tokenize(r.text));
    parts.push_back(std::move(r));
    return;
  }
  const ChunkPlan plan =
      PlanChunks(r.text, words, pieces.size(), options_.chunking, embedder_->max_tokens());
  const std::span<const int32_t> all(pieces);
  switch (plan.kind) {
    case ChunkPlan::Kind::kWhole:
      seqs.push_back(embedder_->Frame(all));
      parts.push_back(std::move(r));
      return;
    case ChunkPlan::Kind::kTooLong:
      error = Rejection{"too_long", "chunking",
                        std::to_string(plan.tokens) + " tokens; the model takes " +
                            std::to_string(plan.max_tokens) + " (chunking.on_overflow: reject)",
                        1};
      stats_.rejected_too_long.fetch_add(1, std::memory_order_relaxed);
      parts.push_back(std::move(r));
      seqs.emplace_back();
      return;
    case ChunkPlan::Kind::kTruncated: {
      const ChunkSpan& span = plan.spans.front();
      seqs.push_back(embedder_->Frame(all.subspan(span.first_piece, span.pieces)));
      r.truncated = true;
      r.char_start = span.char_begin;
      r.char_end = span.char_end;
      // Never silent: counted (stats, metrics) and logged, the first ones
      // and then every 1,000th.
      if (const uint64_t n = stats_.truncated.fetch_add(1, std::memory_order_relaxed);
          n < 10 || n % 1000 == 0) {
        GetLogger("pipeline")
            ->warn(
                "{}: '{}' is {} tokens, the model takes {}: truncated to characters [0, {}) "
                "(chunking.on_overflow: truncate; {} truncated so far)",
                source_.name(), r.id, plan.tokens, plan.max_tokens, span.char_end, n + 1);
      }
      parts.push_back(std::move(r));
      return;
    }
    case ChunkPlan::Kind::kChunked:
      break;
  }
  const std::vector<ChunkSpan>& spans = plan.spans;
  auto doc = std::make_shared<const std::string>(std::move(r.text));
  r.text.clear();
  parts.reserve(spans.size());
  for (size_t i = 0; i < spans.size(); ++i) {
    const ChunkSpan& span = spans[i];
    Record part;
    if (i + 1 == spans.size()) {
      part = std::move(r);  // the last: the source's originals, acked after the rest
    } else {
      part.id = r.id;
      part.metadata_json = r.metadata_json;
      part.mapped = r.mapped;
      part.input_source = r.input_source;
      part.input_timestamp = r.input_timestamp;
      part.arrival = r.arrival;
      part.user_id = r.user_id;
      part.event_key = r.event_key;
      part.handle = r.handle;
    }
    part.text = doc->substr(span.byte_begin, span.byte_end - span.byte_begin);
    part.chunk_index = static_cast<uint32_t>(i);
    part.chunk_count = static_cast<uint32_t>(spans.size());
    part.char_start = span.char_begin;
    part.char_end = span.char_end;
    part.document = doc;
    seqs.push_back(embedder_->Frame(all.subspan(span.first_piece, span.pieces)));
    parts.push_back(std::move(part));
  }
  stats_.chunked.fetch_add(1, std::memory_order_relaxed);
  stats_.chunks.fetch_add(spans.size(), std::memory_order_relaxed);
}

void Runtime::Run(const std::atomic<bool>& stop) {
  auto log = GetLogger("pipeline");
  encoder_ = std::thread([this] { EncoderLoop(); });
  stats_.running = true;

  bool ended = false;
  while (!stop.load() && !(ended && carry_.empty())) {
    AckDone();
    std::string why;
    const bool hold = Hold(why);
    if (hold != paused_) {
      paused_ = hold;
      if (hold) {
        source_.Pause();
        log->info("{}: intake paused ({})", source_.name(), why);
      } else {
        source_.Resume();
        log->info("{}: intake resumed", source_.name());
      }
      stats_.paused = hold;
      for (auto* l : listeners_) l->OnPause(hold, why);
    }
    {
      // The encoder has enough ahead of it: read no further for now (the
      // source is not paused for this; it is read again within a batch's
      // embedding time). Records wait in the source, not in memory here.
      std::unique_lock lock(mu_);
      if (to_encode_.size() >= options_.max_queued_batches) {
        cv_.wait_for(lock, std::chrono::milliseconds(20),
                     [this] { return to_encode_.size() < options_.max_queued_batches; });
        continue;
      }
    }
    auto wait = std::chrono::milliseconds(100);
    const auto now = Clock::now();
    if (building_) {
      const auto until = std::min(deadline_, first_seen_ + options_.batch_linger);
      wait = std::max(std::chrono::milliseconds(0),
                      std::chrono::duration_cast<std::chrono::milliseconds>(until - now));
    }
    if (hold || stats_.inflight_records.load() > 0) {
      wait = std::min(wait, std::chrono::milliseconds(20));  // acks wait on this loop
    }
    // Read only once what was read before is in batches: a read of many
    // records is cut into batches as the encoder takes them.
    size_t got = options_.read_max_records;
    if (carry_.empty()) {
      ReadBatch rb = source_.Read(options_.read_max_records, wait);
      ended = rb.end;
      got = rb.records.size() + rb.rejected.size();
      const auto read_at = Clock::now();
      for (auto& [r, error] : rb.rejected) carry_.emplace_back(std::move(r), std::move(error));
      for (auto& r : rb.records) carry_.emplace_back(std::move(r), std::nullopt);
      for (auto& c : carry_) {
        if (c.first.arrival == Clock::time_point{}) c.first.arrival = read_at;
      }
    }
    while (!carry_.empty()) {
      auto [r, error] = std::move(carry_.front());
      carry_.pop_front();
      if (Add(std::move(r), std::move(error))) {
        std::lock_guard lock(mu_);
        if (to_encode_.size() >= options_.max_queued_batches) break;
      }
    }
    if (building_ && carry_.empty()) {
      const auto t = Clock::now();
      const bool drained = got < options_.read_max_records;
      if (drained && (t >= first_seen_ + options_.batch_linger || t >= deadline_)) Flush();
    }
  }
  carry_.clear();  // read, never batched: not acked, a replay delivers them

  // Drain: embed the batch in hand, wait for everything in flight.
  Flush();
  log->info("{}: stopping, {} records in flight", source_.name(), stats_.inflight_records.load());
  const auto drain_until = Clock::now() + options_.drain_timeout;
  for (;;) {
    AckDone();
    std::unique_lock lock(mu_);
    if (inflight_.empty()) break;
    if (Clock::now() >= drain_until) {
      lock.unlock();
      log->warn("{}: {} records not acked after {} ms; a replay delivers them again",
                source_.name(), stats_.inflight_records.load(), options_.drain_timeout.count());
      abandon_ = true;
      for (auto& w : workers_) w->guard.Cancel();
      dead_letters_->guard.Cancel();
      break;
    }
    cv_.wait_until(lock, std::min(drain_until, Clock::now() + std::chrono::milliseconds(50)));
  }
  {
    std::lock_guard lock(mu_);
    encoder_stop_ = true;
  }
  cv_.notify_all();
  encoder_.join();
  for (auto& w : workers_) w->Stop();
  dead_letters_->Stop();
  AckDone();
  stats_.running = false;
  log->info("{}: stopped: read {}, embedded {}, stored {}, rejected {}, acked {}", source_.name(),
            stats_.read.load(), stats_.embedded.load(), stats_.stored.load(),
            stats_.rejected.load(), stats_.acked.load());
}

bool Runtime::Add(Record&& r, std::optional<Rejection> error) {
  stats_.read.fetch_add(1, std::memory_order_relaxed);
  std::vector<Record> parts;
  std::vector<std::vector<int32_t>> seqs;
  Split(std::move(r), error, parts, seqs);
  if (!error) {
    for (auto* l : listeners_) l->OnRead(parts.front());
  }
  size_t tokens = 0;
  for (const auto& q : seqs) tokens += q.size();
  // One batch per document, each id once per batch (RuntimeOptions::chunking),
  // and a batch over the token budget only when one document alone is.
  const std::string id = parts.front().id;
  const bool ok = !error;
  bool flushed = false;  // the caller then checks the encoder's queue (backpressure)
  if (building_ && !building_->records.empty() &&
      ((ok && building_->ids.count(id) != 0) ||
       building_->token_count + tokens > options_.batch_max_tokens)) {
    Flush();
    flushed = true;
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    AddPart(std::move(parts[i]), i == 0 ? std::move(error) : std::nullopt, std::move(seqs[i]));
  }
  if (ok) building_->ids.insert(id);
  Batch& b = *building_;
  if (b.token_count >= options_.batch_max_tokens ||
      b.records.size() >= options_.batch_max_records) {
    Flush();
    return true;
  }
  return flushed;
}

void Runtime::AddPart(Record&& r, std::optional<Rejection> error, std::vector<int32_t> tokens) {
  size_t n = tokens.size();
  if (!options_.embed && !error && !r.deleted()) n = std::max<size_t>(1, r.text.size() / 4);
  if (!building_) {
    building_ = std::make_shared<Batch>();
    first_seen_ = Clock::now();
    deadline_ = r.arrival + options_.batch_max_wait;
  }
  deadline_ = std::min(deadline_, r.arrival + options_.batch_max_wait);
  const bool vector = !error && !r.deleted() && embedder_ != nullptr && options_.embed;
  const size_t bytes =
      r.Bytes() + tokens.size() * sizeof(int32_t) + (vector ? embedder_->dim() * sizeof(float) : 0);
  stats_.inflight_records.fetch_add(1, std::memory_order_relaxed);
  stats_.inflight_bytes.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed);
  Batch& b = *building_;
  b.bytes += bytes;
  b.token_count += n;
  b.records.push_back(std::move(r));
  b.decode_error.push_back(std::move(error));
  b.tokens.push_back(std::move(tokens));
}

bool Runtime::Hold(std::string& why) const {
  for (const auto& w : workers_) {
    if (!w->guard.stats().available.load()) {
      why = "sink " + w->guard.name() + " unavailable";
      return true;
    }
  }
  if (dead_letters_ && !dead_letters_->guard.stats().available.load()) {
    why = "dead letters unavailable";
    return true;
  }
  const int64_t records = stats_.inflight_records.load();
  const int64_t bytes = stats_.inflight_bytes.load();
  // Hysteresis: resume only once well below the limit, so a steady stream
  // does not toggle the source on every batch.
  const double level = paused_ ? 0.75 : 1.0;
  if (records > 0 &&
      static_cast<double>(records) >= level * static_cast<double>(options_.max_inflight_records)) {
    why = std::to_string(records) + " records in flight";
    return true;
  }
  if (records > 0 &&
      static_cast<double>(bytes) >= level * static_cast<double>(options_.max_inflight_bytes)) {
    why = std::to_string(bytes) + " bytes in flight";
    return true;
  }
  return false;
}

void Runtime::Flush() {
  if (!building_) return;
  std::shared_ptr<Batch> batch = std::move(building_);
  building_.reset();
  batch->seq = next_seq_++;
  batch->sink_refused.resize(sinks_.size());
  {
    std::lock_guard lock(mu_);
    inflight_.push_back(batch);
    to_encode_.push_back(std::move(batch));
  }
  cv_.notify_all();
}

void Runtime::EncoderLoop() {
  for (;;) {
    std::shared_ptr<Batch> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return encoder_stop_ || !to_encode_.empty(); });
      if (to_encode_.empty()) return;
      batch = std::move(to_encode_.front());
      to_encode_.pop_front();
    }
    cv_.notify_all();  // the intake thread may read again
    Encode(std::move(batch), /*outer=*/true);
  }
}

std::shared_ptr<Runtime::Batch> Runtime::TakeOvertaking(const Batch& current) {
  std::shared_ptr<Batch> next;
  {
    std::lock_guard lock(mu_);
    if (to_encode_.empty()) return nullptr;
    const Batch& n = *to_encode_.front();
    // Only a batch of one slice that shares no id with the long one: a later
    // operation on an id must never be written before an earlier one.
    if (n.token_count > options_.batch_max_tokens) return nullptr;
    for (const auto& r : n.records) {
      if (current.ids.count(r.id) != 0) return nullptr;
    }
    next = std::move(to_encode_.front());
    to_encode_.pop_front();
  }
  cv_.notify_all();
  return next;
}

void Runtime::Encode(std::shared_ptr<Batch> batch, bool outer) {
  Batch& b = *batch;
  for (size_t i = 0; i < b.records.size(); ++i) {
    if (!b.decode_error[i]) b.live.push_back(i);
  }
  const size_t dim = options_.embed ? embedder_->dim() : 0;
  std::vector<size_t> embedded;  // positions in live of the upserts
  if (options_.embed) {
    for (size_t j = 0; j < b.live.size(); ++j) {
      if (!b.records[b.live[j]].deleted()) embedded.push_back(j);
    }
  }
  if (!embedded.empty()) {
    std::vector<std::vector<int32_t>> seqs;
    seqs.reserve(embedded.size());
    for (size_t j : embedded) {
      const size_t i = b.live[j];
      for (auto* l : listeners_) l->OnEmbedding(b.records[i]);
      seqs.push_back(std::move(b.tokens[i]));
    }
    b.vectors.resize(embedded.size() * dim);
    // A long document's chunks share one batch (a sink replaces them in one
    // step) that may be far over the token budget: it is embedded in slices
    // of the budget. Between two slices a search gets the encoder (its lock
    // is first come, first served), the next batch may overtake (written and
    // acknowledged in its turn: acks stay in read order), and a stop past
    // the drain timeout gives the batch up.
    for (size_t start = 0; start < seqs.size();) {
      size_t end = start, slice_tokens = 0;
      while (end < seqs.size() &&
             (end == start || slice_tokens + seqs[end].size() <= options_.batch_max_tokens)) {
        slice_tokens += seqs[end++].size();
      }
      if (abandon_.load()) {
        b.cancelled = true;
        break;
      }
      if (outer && start > 0 && options_.allow_overtaking) {
        while (auto next = TakeOvertaking(b)) Encode(std::move(next), /*outer=*/false);
      }
      std::vector<std::vector<int32_t>> slice;
      if (start == 0 && end == seqs.size()) {
        slice = std::move(seqs);
      } else {
        slice.assign(std::make_move_iterator(seqs.begin() + static_cast<ptrdiff_t>(start)),
                     std::make_move_iterator(seqs.begin() + static_cast<ptrdiff_t>(end)));
      }
      const auto t0 = Clock::now();
      embedder_->Embed(slice, b.vectors.data() + start * dim);
      const auto took = Clock::now() - t0;
      for (auto* l : listeners_) l->OnBatch(end - start, slice_tokens, took);
      start = end;
    }
    if (b.cancelled) {
      // Given up at stop: not written, not acked (a replay delivers it).
      Finish(batch);
      return;
    }
    for (size_t j : embedded) {
      for (auto* l : listeners_) l->OnEmbedded(b.records[b.live[j]]);
    }
    stats_.embedded.fetch_add(embedded.size(), std::memory_order_relaxed);
  }
  b.tokens.clear();
  b.tokens.shrink_to_fit();
  stats_.batches.fetch_add(1, std::memory_order_relaxed);
  stats_.batch_records.fetch_add(b.records.size(), std::memory_order_relaxed);
  stats_.batch_tokens.fetch_add(b.token_count, std::memory_order_relaxed);
  for (size_t j = 0; j < b.live.size(); ++j) b.items.push_back({&b.records[b.live[j]], {}});
  for (size_t k = 0; k < embedded.size(); ++k) {
    b.items[embedded[k]].vector = std::span<const float>(b.vectors.data() + k * dim, dim);
  }
  Dispatch(std::move(batch));
}

void Runtime::Dispatch(std::shared_ptr<Batch> batch) {
  if (workers_.empty() || batch->items.empty()) {
    batch->sinks_left = 1;
    SinkDone(batch);
    return;
  }
  batch->sinks_left = workers_.size();
  for (auto& w : workers_) w->Push(batch);
}

void Runtime::SinkDone(const std::shared_ptr<Batch>& batch) {
  if (batch->sinks_left.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  Batch& b = *batch;
  // The first sink (in configuration order) that refused a record names why.
  std::vector<const Rejection*> refused(b.live.size(), nullptr);
  for (const auto& per_sink : b.sink_refused) {
    for (const auto& [pos, why] : per_sink) {
      if (pos < refused.size() && refused[pos] == nullptr) refused[pos] = &why;
    }
  }
  size_t j = 0;  // position in live
  for (size_t i = 0; i < b.records.size(); ++i) {
    if (b.decode_error[i]) {
      b.letters.push_back({&b.records[i], *b.decode_error[i]});
      continue;
    }
    const Rejection* refusal = refused[j++];
    const Record& r = b.records[i];
    if (refusal != nullptr) {
      // A refused chunk makes its document a dead letter, once, with the
      // source's originals (its last chunk holds them; chunks are together).
      const Record* doc = &b.records[i + (r.chunk_count - 1 - r.chunk_index)];
      if (b.letters.empty() || b.letters.back().record != doc) b.letters.push_back({doc, *refusal});
    } else if (!b.cancelled) {
      for (auto* l : listeners_) l->OnStored(r);
      stats_.stored.fetch_add(1, std::memory_order_relaxed);
      if (r.deleted()) stats_.deleted.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (!b.letters.empty() && !b.cancelled) {
    dead_letters_->Push(batch);
    return;
  }
  Finish(batch);
}

void Runtime::Finish(const std::shared_ptr<Batch>& batch) {
  if (!batch->cancelled) {
    for (auto* l : listeners_) l->OnBatchDone();
  }
  {
    std::lock_guard lock(mu_);
    batch->done = true;
  }
  cv_.notify_all();
}

void Runtime::AckDone() {
  std::vector<std::shared_ptr<Batch>> ready;
  {
    std::lock_guard lock(mu_);
    while (!inflight_.empty() && inflight_.front()->done && !inflight_.front()->cancelled) {
      ready.push_back(std::move(inflight_.front()));
      inflight_.pop_front();
    }
    // A batch given up at shutdown stops the prefix: neither it nor anything
    // after it is acked.
  }
  for (const auto& batch : ready) {
    // One ack per source record: a document's with its last chunk.
    std::vector<const Record*> records;
    records.reserve(batch->records.size());
    for (const auto& r : batch->records) {
      if (r.chunk_index + 1 >= r.chunk_count) records.push_back(&r);
    }
    source_.Ack(records);
    for (const Record* r : records) {
      for (auto* l : listeners_) l->OnAcked(*r);
    }
    stats_.acked.fetch_add(records.size(), std::memory_order_relaxed);
    stats_.inflight_records.fetch_sub(static_cast<int64_t>(batch->records.size()),
                                      std::memory_order_relaxed);
    stats_.inflight_bytes.fetch_sub(static_cast<int64_t>(batch->bytes), std::memory_order_relaxed);
  }
}

}  // namespace embedstream::pipeline

#include "pipeline/runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace embedstream::pipeline {
namespace {

using namespace std::chrono_literals;

Record Make(const std::string& id, const std::string& text = "a b c d") {
  Record r;
  r.id = id;
  r.text = text;
  return r;
}

// Waits for `pred` up to 10 s (a generous bound: it only keeps a broken
// runtime from hanging the test, it measures nothing).
bool WaitFor(const std::function<bool()>& pred) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A source handing out queued records; honours Pause; records every call.
class FakeSource : public Source {
 public:
  explicit FakeSource(bool finite = true) : finite_(finite) {}
  const std::string& name() const override { return name_; }

  void Offer(std::vector<Record> records) {
    std::lock_guard lock(mu_);
    for (auto& r : records) queue_.push_back({std::move(r), std::nullopt});
  }
  void OfferBad(Record r, Rejection why) {
    std::lock_guard lock(mu_);
    queue_.push_back({std::move(r), std::move(why)});
  }

  ReadBatch Read(size_t max_records, std::chrono::milliseconds wait) override {
    ReadBatch out;
    std::unique_lock lock(mu_);
    ++reads_;
    if (paused_) {
      lock.unlock();
      std::this_thread::sleep_for(std::min(wait, 5ms));
      return out;
    }
    const size_t n = std::min({queue_.size(), max_records, per_read});
    for (size_t i = 0; i < n; ++i) {
      auto& [r, bad] = queue_.front();
      if (bad) {
        out.rejected.emplace_back(std::move(r), std::move(*bad));
      } else {
        out.records.push_back(std::move(r));
      }
      queue_.pop_front();
    }
    out.end = finite_ && queue_.empty() && n == 0;
    lock.unlock();
    if (n == 0 && !out.end) std::this_thread::sleep_for(std::min(wait, 5ms));
    return out;
  }
  void Ack(std::span<const Record* const> records) override {
    std::lock_guard lock(mu_);
    for (const Record* r : records) acked_.push_back(r->id);
  }
  WriteResult Reject(std::span<const DeadLetter> letters) override {
    if (reject_hook) {
      WriteResult r = reject_hook(letters);
      if (!r.ok()) return r;
    }
    std::lock_guard lock(mu_);
    for (const auto& l : letters) rejected_.emplace_back(l.record->id, l.why);
    return WriteResult::Ok();
  }
  void Pause() override {
    std::lock_guard lock(mu_);
    paused_ = true;
    ++pauses_;
  }
  void Resume() override {
    std::lock_guard lock(mu_);
    paused_ = false;
    ++resumes_;
  }

  std::vector<std::string> acked() const {
    std::lock_guard lock(mu_);
    return acked_;
  }
  std::vector<std::pair<std::string, Rejection>> rejected() const {
    std::lock_guard lock(mu_);
    return rejected_;
  }
  bool paused() const {
    std::lock_guard lock(mu_);
    return paused_;
  }
  int pauses() const {
    std::lock_guard lock(mu_);
    return pauses_;
  }
  int resumes() const {
    std::lock_guard lock(mu_);
    return resumes_;
  }
  size_t remaining() const {
    std::lock_guard lock(mu_);
    return queue_.size();
  }
  int reads() const {
    std::lock_guard lock(mu_);
    return reads_;
  }

  size_t per_read = 1000;
  std::function<WriteResult(std::span<const DeadLetter>)> reject_hook;

 private:
  const std::string name_ = "fake";
  const bool finite_;
  mutable std::mutex mu_;
  std::deque<std::pair<Record, std::optional<Rejection>>> queue_;
  std::vector<std::string> acked_;
  std::vector<std::pair<std::string, Rejection>> rejected_;
  bool paused_ = false;
  int pauses_ = 0;
  int resumes_ = 0;
  int reads_ = 0;
};

// One token per word; the vector holds the token count (then zeros).
class FakeEmbedder : public Embedder {
 public:
  size_t dim() const override { return 2; }
  std::vector<int32_t> Tokenize(std::string_view text) override {
    std::vector<int32_t> ids;
    size_t i = 0;
    while (i < text.size()) {
      while (i < text.size() && text[i] == ' ') ++i;
      if (i >= text.size()) break;
      ids.push_back(static_cast<int32_t>(ids.size()));
      while (i < text.size() && text[i] != ' ') ++i;
    }
    return ids;
  }
  void Embed(const std::vector<std::vector<int32_t>>& tokens, float* out) override {
    if (on_embed) on_embed(tokens.size());
    std::lock_guard lock(mu_);
    batches.push_back(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
      out[2 * i] = static_cast<float>(tokens[i].size());
      out[2 * i + 1] = 0;
    }
  }
  std::vector<size_t> Batches() {
    std::lock_guard lock(mu_);
    return batches;
  }
  std::function<void(size_t)> on_embed;

 private:
  std::mutex mu_;
  std::vector<size_t> batches;
};

// A sink whose answer per call is scripted; stores ids it accepted.
class FakeSink : public Sink {
 public:
  explicit FakeSink(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  WriteResult Write(std::span<const SinkItem> items) override {
    std::vector<std::string> ids;
    for (const auto& it : items) ids.push_back(it.record->id);
    {
      std::lock_guard lock(mu_);
      calls.push_back(ids);
    }
    WriteResult r = script ? script(items) : WriteResult::Ok();
    if (r.ok()) {
      std::set<size_t> refused;
      for (const auto& [i, why] : r.refused) refused.insert(i);
      std::lock_guard lock(mu_);
      for (size_t i = 0; i < items.size(); ++i) {
        if (refused.count(i) == 0) {
          stored[items[i].record->id]++;
          if (!items[i].vector.empty()) tokens[items[i].record->id] = items[i].vector[0];
        }
      }
    }
    return r;
  }
  std::map<std::string, int> Stored() {
    std::lock_guard lock(mu_);
    return stored;
  }
  std::vector<std::vector<std::string>> Calls() {
    std::lock_guard lock(mu_);
    return calls;
  }
  std::function<WriteResult(std::span<const SinkItem>)> script;
  std::map<std::string, float> tokens;

 private:
  const std::string name_;
  std::mutex mu_;
  std::vector<std::vector<std::string>> calls;
  std::map<std::string, int> stored;
};

RuntimeOptions FastOptions() {
  RuntimeOptions o;
  o.batch_max_tokens = 8;
  o.batch_max_wait = 5ms;
  o.guard.retry_attempts = 3;
  o.guard.backoff = {1ms, 2ms};
  o.guard.breaker.failure_threshold = 0;  // the breaker is tested on its own
  o.guard.breaker.failure_rate_threshold = 0;
  o.drain_timeout = 5s;
  return o;
}

std::vector<Record> Records(int n, const std::string& prefix = "r") {
  std::vector<Record> out;
  for (int i = 0; i < n; ++i) out.push_back(Make(prefix + std::to_string(i)));
  return out;
}

std::vector<std::string> Ids(int n, const std::string& prefix = "r") {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

TEST(Runtime, BatchesByTokenBudgetEmbedsAndAcksEveryRecordInOrder) {
  FakeSource source;
  source.Offer(Records(10));  // 4 tokens each, budget 8: batches of 2
  FakeEmbedder embedder;
  FakeSink a("a"), b("b");
  Runtime rt(source, &embedder, {&a, &b}, FastOptions());
  std::atomic<bool> stop{false};
  rt.Run(stop);  // a finite source: returns once everything is acked
  EXPECT_EQ(source.acked(), Ids(10));
  EXPECT_EQ(embedder.Batches(), std::vector<size_t>(5, 2));
  for (auto* s : {&a, &b}) {
    EXPECT_EQ(s->Stored().size(), 10u);
    for (const auto& [id, n] : s->Stored()) EXPECT_EQ(n, 1) << id;
    EXPECT_FLOAT_EQ(s->tokens["r3"], 4.0f);  // the vector of that record, not another's
  }
  EXPECT_EQ(rt.stats().acked.load(), 10u);
  EXPECT_EQ(rt.stats().inflight_records.load(), 0);
  EXPECT_EQ(rt.stats().inflight_bytes.load(), 0);
  EXPECT_TRUE(source.rejected().empty());
}

// OnBatchDone runs once per finished batch, before the batch's acks, and a
// listener that blocks there (an events bus that is down) holds them back.
TEST(Runtime, OnBatchDoneComesBeforeTheAcksAndABlockedOneHoldsThemBack) {
  class Gate : public Listener {
   public:
    void OnStored(const Record&) override { stored++; }
    void OnBatchDone() override {
      std::unique_lock lock(mu);
      done_calls++;
      cv.wait(lock, [&] { return open; });
    }
    void Open() {
      std::lock_guard lock(mu);
      open = true;
      cv.notify_all();
    }
    std::atomic<int> stored{0};
    std::mutex mu;
    std::condition_variable cv;
    int done_calls = 0;  // guarded by mu
    bool open = false;   // guarded by mu
  };
  FakeSource source(/*finite=*/false);
  source.Offer(Records(4));  // batches of 2
  FakeEmbedder embedder;
  FakeSink sink("a");
  Gate gate;
  Runtime rt(source, &embedder, {&sink}, FastOptions());
  rt.AddListener(&gate);
  std::atomic<bool> stop{false};
  std::thread run([&] { rt.Run(stop); });
  ASSERT_TRUE(WaitFor([&] { return gate.stored.load() >= 2; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(source.acked().empty()) << "an ack overtook OnBatchDone";
  gate.Open();
  ASSERT_TRUE(WaitFor([&] { return source.acked().size() == 4; }));
  EXPECT_EQ(source.acked(), Ids(4));
  {
    std::lock_guard lock(gate.mu);
    EXPECT_EQ(gate.done_calls, 2);
  }
  stop = true;
  run.join();
}

TEST(Runtime, ABatchBelowTheBudgetIsEmbeddedByItsDeadlineWithoutMoreInput) {
  FakeSource source(/*finite=*/false);
  FakeEmbedder embedder;
  FakeSink sink("s");
  RuntimeOptions o = FastOptions();
  o.batch_max_tokens = 1000;
  o.batch_max_wait = 20ms;
  o.batch_linger = 1h;  // would wait for companions forever: the deadline must win
  Runtime rt(source, &embedder, {&sink}, o);
  std::atomic<bool> stop{false};
  std::thread run([&] { rt.Run(stop); });
  source.Offer(Records(3));
  EXPECT_TRUE(WaitFor([&] { return source.acked().size() == 3; }));
  EXPECT_EQ(embedder.Batches(), std::vector<size_t>{3});
  stop = true;
  run.join();
}

TEST(Runtime, AnOldRecordsDeadlineHasPassedAlready) {
  // arrival = its timestamp: a record that waited elsewhere is not held again.
  FakeSource source(false);
  FakeEmbedder embedder;
  FakeSink sink("s");
  RuntimeOptions o = FastOptions();
  o.batch_max_tokens = 1000;
  o.batch_max_wait = 1h;
  o.batch_linger = 1h;
  Runtime rt(source, &embedder, {&sink}, o);
  std::atomic<bool> stop{false};
  std::thread run([&] { rt.Run(stop); });
  Record r = Make("old");
  r.arrival = std::chrono::steady_clock::now() - 2h;
  source.Offer({std::move(r)});
  EXPECT_TRUE(WaitFor([&] { return source.acked().size() == 1; }));
  stop = true;
  run.join();
}

TEST(Runtime, AcksWaitForEveryEarlierBatchWhenALaterOneFinishesFirst) {
  // Batch 0 holds a decode error whose dead letter is slow; batch 1 is stored
  // by the sinks meanwhile. Batch 1 is acked only after batch 0.
  FakeSource source(false);
  FakeEmbedder embedder;
  FakeSink sink("s");
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<bool> in_reject{false};
  source.reject_hook = [&](std::span<const DeadLetter>) {
    in_reject = true;
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return release; });
    return WriteResult::Ok();
  };
  RuntimeOptions o = FastOptions();
  o.batch_max_tokens = 4;  // one record per batch
  Runtime rt(source, &embedder, {&sink}, o);
  std::atomic<bool> stop{false};
  std::thread run([&] { rt.Run(stop); });
  source.OfferBad(Make("bad"), Rejection{"invalid_json", "decode", "x", 1});
  source.Offer({Make("good0"), Make("good1")});
  ASSERT_TRUE(WaitFor([&] { return in_reject.load() && sink.Stored().size() == 2; }));
  std::this_thread::sleep_for(50ms);  // the runtime has had every chance to ack
  EXPECT_TRUE(source.acked().empty());
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(WaitFor([&] { return source.acked().size() == 3; }));
  EXPECT_EQ(source.acked(), (std::vector<std::string>{"bad", "good0", "good1"}));
  ASSERT_EQ(source.rejected().size(), 1u);
  EXPECT_EQ(source.rejected()[0].second.reason, "invalid_json");
  EXPECT_EQ(sink.Stored().count("bad"), 0u);  // a decode error never reaches a sink
  stop = true;
  run.join();
}

TEST(Runtime, ARecordTheSinkRefusesGoesToTheDeadLettersAfterRetryAttempts) {
  FakeSource source;
  source.Offer({Make("ok1"), Make("poison"), Make("ok2")});
  FakeEmbedder embedder;
  FakeSink sink("qdrant");
  int poison_writes = 0;
  sink.script = [&](std::span<const SinkItem> items) {
    WriteResult r;
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].record->id == "poison") {
        ++poison_writes;
        r.refused.emplace_back(i, "bad payload");
      }
    }
    return r;
  };
  RuntimeOptions o = FastOptions();
  o.batch_max_tokens = 1000;
  o.guard.retry_attempts = 3;
  Runtime rt(source, &embedder, {&sink}, o);
  std::atomic<bool> stop{false};
  rt.Run(stop);
  EXPECT_EQ(poison_writes, 3);
  ASSERT_EQ(source.rejected().size(), 1u);
  const auto rejected = source.rejected();
  const auto& [id, why] = rejected[0];
  EXPECT_EQ(id, "poison");
  EXPECT_EQ(why.reason, "sink_rejected");
  EXPECT_EQ(why.stage, "qdrant");
  EXPECT_EQ(why.detail, "bad payload");
  EXPECT_EQ(why.attempts, 3);
  EXPECT_EQ(sink.Stored(), (std::map<std::string, int>{{"ok1", 1}, {"ok2", 1}}));
  EXPECT_EQ(source.acked().size(), 3u);
  EXPECT_EQ(rt.guards()[0]->stats().refused.load(), 1u);
}

TEST(Runtime, AnUnavailableSinkPausesTheSourceAndSendsNothingToTheDeadLetters) {
  FakeSource source(false);
  FakeEmbedder embedder;
  FakeSink store("store"), down("qdrant");
  std::atomic<bool> up{false};
  down.script = [&](std::span<const SinkItem>) {
    return up ? WriteResult::Ok() : WriteResult::Unavailable("connection refused");
  };
  RuntimeOptions o = FastOptions();
  o.guard.backoff = {1ms, 5ms};
  Runtime rt(source, &embedder, {&store, &down}, o);
  std::atomic<bool> stop{false};
  std::thread run([&] { rt.Run(stop); });
  source.Offer(Records(4));
  ASSERT_TRUE(WaitFor([&] { return source.paused(); }));
  source.Offer(Records(4, "later"));
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(source.paused());
  EXPECT_EQ(source.remaining(), 4u);   // nothing read while paused
  EXPECT_GT(down.Calls().size(), 3u);  // retried, not given up
  EXPECT_TRUE(source.acked().empty());
  EXPECT_TRUE(source.rejected().empty());
  EXPECT_TRUE(rt.stats().paused.load());
  EXPECT_FALSE(rt.guards()[1]->stats().available.load());
  up = true;
  ASSERT_TRUE(WaitFor([&] { return source.acked().size() == 8; }));
  EXPECT_GE(source.resumes(), 1);
  EXPECT_TRUE(source.rejected().empty());
  EXPECT_EQ(down.Stored().size(), 8u);
  EXPECT_GT(source.reads(), 10);  // the source kept being served while paused
  stop = true;
  run.join();
}

TEST(Runtime, ABatchTooLargeIsSplitAndARecordTooLargeAloneIsADeadLetter) {
  FakeSource source;
  std::vector<Record> rs = Records(7);
  rs.insert(rs.begin() + 3, Make("huge"));
  source.Offer(std::move(rs));
  FakeEmbedder embedder;
  FakeSink sink("qdrant");
  sink.script = [](std::span<const SinkItem> items) {
    if (items.size() > 2) return WriteResult::TooLarge("413 Payload Too Large");
    for (const auto& it : items) {
      if (it.record->id == "huge") return WriteResult::TooLarge("413 Payload Too Large");
    }
    return WriteResult::Ok();
  };
  RuntimeOptions o = FastOptions();
  o.batch_max_tokens = 1000;
  Runtime rt(source, &embedder, {&sink}, o);
  std::atomic<bool> stop{false};
  rt.Run(stop);
  EXPECT_EQ(sink.Stored().size(), 7u);
  EXPECT_EQ(sink.Stored().count("huge"), 0u);
  ASSERT_EQ(source.rejected().size(), 1u);
  EXPECT_EQ(source.rejected()[0].first, "huge");
  EXPECT_EQ(source.rejected()[0].second.reason, "too_large");
  EXPECT_EQ(source.rejected()[0].second.attempts, 1);  // not retried
  EXPECT_EQ(source.acked().size(), 8u);
  for (const auto& call : sink.Calls()) EXPECT_FALSE(call.empty());
}

TEST(Runtime, StopDrainsWhatIsInFlightBeforeReturning) {
  FakeSource source(false);
  FakeEmbedder embedder;
  FakeSink sink("s");
  std::atomic<bool> slow{true};
  sink.script = [&](std::span<const SinkItem>) {
    while (slow) std::this_thread::sleep_for(1ms);
    return WriteResult::Ok();
  };
  Runtime rt(source, &embedder, {&sink}, FastOptions());
  std::atomic<bool> stop{false};
  std::thread run([&] { rt.Run(stop); });
  source.Offer(Records(6));
  // Stop once all six are read and the first write hangs: what was read is drained, not dropped.
  ASSERT_TRUE(WaitFor([&] { return rt.stats().read.load() == 6 && !sink.Calls().empty(); }));
  stop = true;
  std::this_thread::sleep_for(20ms);
  slow = false;
  run.join();
  EXPECT_EQ(source.acked().size(), 6u);
  EXPECT_EQ(sink.Stored().size(), 6u);
}

TEST(Runtime, StopPastTheDrainTimeoutAcksNothingASinkDidNotTake) {
  FakeSource source(false);
  FakeEmbedder embedder;
  FakeSink ok("store"), down("qdrant");
  down.script = [](std::span<const SinkItem>) { return WriteResult::Unavailable("down"); };
  RuntimeOptions o = FastOptions();
  o.drain_timeout = 100ms;
  Runtime rt(source, &embedder, {&ok, &down}, o);
  std::atomic<bool> stop{false};
  std::thread run([&] { rt.Run(stop); });
  source.Offer(Records(4));
  ASSERT_TRUE(WaitFor([&] { return down.Calls().size() > 2; }));
  stop = true;
  run.join();  // returns: the drain gave up
  EXPECT_TRUE(source.acked().empty());
  EXPECT_TRUE(source.rejected().empty());
}

TEST(Runtime, InflightBytesAreBoundedAndPauseTheSource) {
  FakeSource source(false);
  source.per_read = 1;
  FakeEmbedder embedder;
  FakeSink sink("s");
  std::atomic<bool> hold{true};
  sink.script = [&](std::span<const SinkItem>) {
    while (hold) std::this_thread::sleep_for(1ms);
    return WriteResult::Ok();
  };
  const std::string big(10000, 'x');  // one token, 10 KB
  std::vector<Record> rs;
  for (int i = 0; i < 100; ++i) {
    Record r;
    r.id = std::to_string(i);
    r.text = big;
    rs.push_back(std::move(r));
  }
  source.Offer(std::move(rs));
  RuntimeOptions o = FastOptions();
  o.batch_max_tokens = 2;
  o.max_inflight_bytes = 50000;  // ~4 records
  Runtime rt(source, &embedder, {&sink}, o);
  std::atomic<bool> stop{false};
  int64_t peak = 0;
  std::thread run([&] { rt.Run(stop); });
  ASSERT_TRUE(WaitFor([&] { return source.paused(); }));
  for (int i = 0; i < 50; ++i) {
    peak = std::max(peak, rt.stats().inflight_bytes.load());
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(source.paused());
  EXPECT_GT(source.remaining(), 80u);
  // The budget, plus the one read that crossed it.
  EXPECT_LE(peak, 50000 + 11000);
  hold = false;
  ASSERT_TRUE(WaitFor([&] { return source.acked().size() == 100; }));
  stop = true;
  run.join();
  EXPECT_EQ(sink.Stored().size(), 100u);
}

TEST(Runtime, TheSinksOfOneBatchWriteConcurrently) {
  // Each sink waits until the other has started the same batch: written one
  // after the other, neither would ever see the other start.
  FakeSource source;
  source.Offer(Records(2));
  FakeEmbedder embedder;
  FakeSink a("a"), b("b");
  std::atomic<int> started{0};
  std::atomic<bool> timed_out{false};
  auto both = [&](std::span<const SinkItem>) {
    started++;
    if (!WaitFor([&] { return started.load() >= 2; })) timed_out = true;
    return WriteResult::Ok();
  };
  a.script = both;
  b.script = both;
  RuntimeOptions o = FastOptions();
  o.batch_max_tokens = 1000;
  Runtime rt(source, &embedder, {&a, &b}, o);
  std::atomic<bool> stop{false};
  rt.Run(stop);
  EXPECT_FALSE(timed_out.load());
  EXPECT_EQ(source.acked().size(), 2u);
}

TEST(Runtime, TheEncoderEmbedsTheNextBatchWhileTheSinksWriteThisOne) {
  FakeSource source;
  source.Offer(Records(4));  // two batches of two
  FakeEmbedder embedder;
  FakeSink sink("s");
  std::atomic<int> embeds{0};
  std::atomic<bool> timed_out{false};
  embedder.on_embed = [&](size_t) { embeds++; };
  sink.script = [&](std::span<const SinkItem> items) {
    if (items[0].record->id == "r0" && !WaitFor([&] { return embeds.load() >= 2; })) {
      timed_out = true;
    }
    return WriteResult::Ok();
  };
  Runtime rt(source, &embedder, {&sink}, FastOptions());
  std::atomic<bool> stop{false};
  rt.Run(stop);
  EXPECT_FALSE(timed_out.load());
  EXPECT_EQ(source.acked(), Ids(4));
}

// Backpressure: with the encoder busy, intake cuts at most the batch the
// encoder waits for (max_queued_batches 1) and the one in hand; the rest stays
// in the source. (A batch cut because the next record would not fit must
// count as a cut, or intake would read everything ahead.)
TEST(Runtime, IntakeStopsReadingWhileTheEncodersQueueIsFull) {
  FakeSource source(false);
  FakeEmbedder embedder;
  std::atomic<bool> embedding{false}, release{false};
  embedder.on_embed = [&](size_t) {
    embedding = true;
    while (!release) std::this_thread::sleep_for(1ms);
  };
  FakeSink sink("s");
  // 3 tokens each, a budget of 8: a batch is cut because the third would not fit.
  Runtime rt(source, &embedder, {&sink}, FastOptions());
  std::atomic<bool> stop{false};
  std::thread run([&] { rt.Run(stop); });
  std::vector<Record> rs;
  for (const Record& r : Records(200)) rs.push_back(Make(r.id, "a b c"));
  source.Offer(std::move(rs));
  ASSERT_TRUE(WaitFor([&] { return embedding.load(); }));
  std::this_thread::sleep_for(100ms);
  // One batch in the encoder, one queued, one in hand (and the record that cut it).
  EXPECT_LE(rt.stats().read.load(), 7u);
  release = true;
  ASSERT_TRUE(WaitFor([&] { return source.acked().size() == 200; }));
  stop = true;
  run.join();
  EXPECT_EQ(source.acked(), Ids(200));
}

TEST(Runtime, ADeadLetterTheSourceCannotWriteIsRetriedNotDropped) {
  FakeSource source;
  source.OfferBad(Make("bad"), Rejection{"invalid_utf8", "decode", "", 1});
  std::atomic<int> tries{0};
  source.reject_hook = [&](std::span<const DeadLetter>) {
    return ++tries < 4 ? WriteResult::Unavailable("broker down") : WriteResult::Ok();
  };
  FakeEmbedder embedder;
  FakeSink sink("s");
  Runtime rt(source, &embedder, {&sink}, FastOptions());
  std::atomic<bool> stop{false};
  rt.Run(stop);
  EXPECT_EQ(tries.load(), 4);
  EXPECT_EQ(source.acked(), std::vector<std::string>{"bad"});
  EXPECT_EQ(rt.stats().rejected.load(), 1u);
}

TEST(Runtime, WithoutEmbeddingSinksGetRecordsWithoutVectors) {
  FakeSource source;
  source.Offer(Records(3));
  FakeSink sink("postgres_text");
  RuntimeOptions o = FastOptions();
  o.embed = false;
  Runtime rt(source, nullptr, {&sink}, o);
  std::atomic<bool> stop{false};
  rt.Run(stop);
  EXPECT_EQ(sink.Stored().size(), 3u);
  EXPECT_TRUE(sink.tokens.empty());
  EXPECT_EQ(rt.stats().embedded.load(), 0u);
  EXPECT_EQ(source.acked().size(), 3u);
}

TEST(SinkGuard, AnOpenBreakerStopsCallsUntilItsProbeIsDue) {
  SinkGuardOptions o;
  o.backoff = {1ms, 1ms};
  o.breaker.failure_threshold = 2;
  o.breaker.failure_rate_threshold = 0;
  o.breaker.open_duration = 30ms;
  std::vector<bool> availability;
  SinkGuard guard("s", o, [&](bool up, const std::string&) { availability.push_back(up); });
  int calls = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto out = guard.Write(3, [&](std::span<const size_t> idx) {
    EXPECT_EQ(idx.size(), 3u);
    return ++calls <= 2 ? WriteResult::Unavailable("down") : WriteResult::Ok();
  });
  EXPECT_FALSE(out.cancelled);
  EXPECT_TRUE(out.refused.empty());
  EXPECT_EQ(calls, 3);  // two failures open it; the third call is the probe
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
  EXPECT_EQ(guard.breaker().opened_total(), 1u);
  EXPECT_EQ(availability, (std::vector<bool>{false, true}));
  EXPECT_EQ(guard.stats().written.load(), 3u);
  EXPECT_EQ(guard.stats().errors.load(), 2u);
}

TEST(SinkGuard, CancelEndsTheWaitOfAWriteThatCannotSucceed) {
  SinkGuardOptions o;
  o.backoff = {5ms, 5ms};
  o.breaker.failure_threshold = 0;
  o.breaker.failure_rate_threshold = 0;
  SinkGuard guard("s", o);
  std::thread cancel([&] {
    std::this_thread::sleep_for(30ms);
    guard.Cancel();
  });
  auto out =
      guard.Write(1, [](std::span<const size_t>) { return WriteResult::Unavailable("down"); });
  cancel.join();
  EXPECT_TRUE(out.cancelled);
}

// FakeEmbedder that can chunk: one piece per space-separated word, a model
// limit of `limit` tokens ([CLS] + pieces + [SEP]).
class WordsEmbedder : public FakeEmbedder {
 public:
  explicit WordsEmbedder(size_t limit) : limit_(limit) {}
  bool TokenizeWords(std::string_view text, std::vector<int32_t>& pieces,
                     std::vector<text::TokenizedWord>& words) override {
    pieces.clear();
    words.clear();
    size_t i = 0;
    while (i < text.size()) {
      while (i < text.size() && text[i] == ' ') ++i;
      if (i >= text.size()) break;
      const size_t b = i;
      while (i < text.size() && text[i] != ' ') ++i;
      words.push_back({static_cast<uint32_t>(b), static_cast<uint32_t>(i),
                       static_cast<uint32_t>(pieces.size()), 1});
      pieces.push_back(static_cast<int32_t>(i - b));
    }
    return true;
  }
  size_t max_tokens() const override { return limit_; }
  std::vector<int32_t> Frame(std::span<const int32_t> pieces) override {
    std::vector<int32_t> seq{-1};
    seq.insert(seq.end(), pieces.begin(), pieces.end());
    seq.push_back(-2);
    return seq;
  }

 private:
  const size_t limit_;
};

// Every item of every write, by call: (chunk id, deleted, has vector, text).
class ItemSink : public Sink {
 public:
  const std::string& name() const override { return name_; }
  WriteResult Write(std::span<const SinkItem> items) override {
    std::vector<std::tuple<std::string, bool, bool, std::string>> call;
    for (const auto& it : items) {
      call.emplace_back(it.record->ChunkId(), it.record->deleted(), !it.vector.empty(),
                        it.record->text);
    }
    std::lock_guard lock(mu_);
    calls.push_back(std::move(call));
    return WriteResult::Ok();
  }
  std::vector<std::vector<std::tuple<std::string, bool, bool, std::string>>> Calls() {
    std::lock_guard lock(mu_);
    return calls;
  }

 private:
  const std::string name_ = "items";
  std::mutex mu_;
  std::vector<std::vector<std::tuple<std::string, bool, bool, std::string>>> calls;
};

TEST(RuntimeChunking, ADocumentBecomesChunksInOneBatchAndIsAckedOnce) {
  FakeSource source;
  // 10 words; the model takes 6 tokens (4 pieces): chunks of 4, 4, 2 words.
  source.Offer({Make("doc", "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9"), Make("short", "a b")});
  WordsEmbedder embedder(6);
  ItemSink sink;
  RuntimeOptions o = FastOptions();
  o.chunking.overlap_tokens = 0;
  o.chunking.split = ChunkingOptions::Split::kTokens;
  Runtime rt(source, &embedder, {&sink}, o);
  std::atomic<bool> stop{false};
  rt.Run(stop);
  EXPECT_EQ(source.acked(), (std::vector<std::string>{"doc", "short"}));
  const auto calls = sink.Calls();
  ASSERT_FALSE(calls.empty());
  // The document's chunks in one write, though the token budget of 8 embeds them in slices
  // ("short" may overtake it, so the write is found by its first id).
  const auto doc = std::find_if(calls.begin(), calls.end(), [](const auto& call) {
    return !call.empty() && std::get<0>(call[0]) == "doc#0";
  });
  ASSERT_NE(doc, calls.end());
  const auto& write = *doc;
  ASSERT_GE(write.size(), 3u);
  EXPECT_EQ(std::get<3>(write[0]), "w0 w1 w2 w3");
  EXPECT_EQ(std::get<0>(write[1]), "doc#1");
  EXPECT_EQ(std::get<3>(write[1]), "w4 w5 w6 w7");
  EXPECT_EQ(std::get<0>(write[2]), "doc#2");
  EXPECT_EQ(std::get<3>(write[2]), "w8 w9");
  EXPECT_EQ(rt.stats().chunked.load(), 1u);
  EXPECT_EQ(rt.stats().chunks.load(), 3u);
  EXPECT_EQ(rt.stats().acked.load(), 2u);
  EXPECT_EQ(rt.stats().read.load(), 2u);
  EXPECT_EQ(rt.stats().inflight_records.load(), 0);
  EXPECT_EQ(rt.stats().inflight_bytes.load(), 0);
}

TEST(RuntimeChunking, TruncateAndRejectAreCounted) {
  for (auto overflow : {ChunkingOptions::Overflow::kTruncate, ChunkingOptions::Overflow::kReject}) {
    FakeSource source;
    source.Offer({Make("long", "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9"), Make("ok", "a b")});
    WordsEmbedder embedder(6);
    ItemSink sink;
    RuntimeOptions o = FastOptions();
    o.chunking.on_overflow = overflow;
    Runtime rt(source, &embedder, {&sink}, o);
    std::atomic<bool> stop{false};
    rt.Run(stop);
    EXPECT_EQ(source.acked(), (std::vector<std::string>{"long", "ok"}));
    size_t items = 0;
    for (const auto& call : sink.Calls()) items += call.size();
    if (overflow == ChunkingOptions::Overflow::kTruncate) {
      EXPECT_EQ(rt.stats().truncated.load(), 1u);
      EXPECT_EQ(items, 2u);
      EXPECT_TRUE(source.rejected().empty());
    } else {
      EXPECT_EQ(rt.stats().rejected_too_long.load(), 1u);
      EXPECT_EQ(items, 1u);
      ASSERT_EQ(source.rejected().size(), 1u);
      EXPECT_EQ(source.rejected()[0].first, "long");
      EXPECT_EQ(source.rejected()[0].second.reason, "too_long");
    }
  }
}

TEST(RuntimeChunking, ADeleteAfterAnUpsertOfTheSameIdIsWrittenAfterIt) {
  FakeSource source;
  Record del;
  del.id = "x";
  del.op = Record::Op::kDelete;
  Record del_unknown = del;
  del_unknown.id = "never-seen";
  source.Offer({Make("x", "a"), Make("y", "b"), del, del_unknown});
  WordsEmbedder embedder(64);
  ItemSink sink;
  RuntimeOptions o = FastOptions();
  o.batch_max_tokens = 1000;  // all four would fit one batch
  Runtime rt(source, &embedder, {&sink}, o);
  std::atomic<bool> stop{false};
  rt.Run(stop);
  EXPECT_EQ(source.acked(), (std::vector<std::string>{"x", "y", "x", "never-seen"}));
  const auto calls = sink.Calls();
  ASSERT_EQ(calls.size(), 2u) << "the batch is cut before the second operation on x";
  ASSERT_EQ(calls[0].size(), 2u);
  EXPECT_EQ(std::get<0>(calls[0][0]), "x");
  EXPECT_FALSE(std::get<1>(calls[0][0]));
  EXPECT_TRUE(std::get<2>(calls[0][0]));
  ASSERT_EQ(calls[1].size(), 2u);
  EXPECT_EQ(std::get<0>(calls[1][0]), "x");
  EXPECT_TRUE(std::get<1>(calls[1][0]));
  EXPECT_FALSE(std::get<2>(calls[1][0])) << "a delete carries no vector";
  EXPECT_EQ(embedder.Batches(), std::vector<size_t>{2}) << "deletes are not embedded";
  EXPECT_EQ(rt.stats().deleted.load(), 2u);
}

TEST(RuntimeChunking, ALongDocumentIsEmbeddedInSlicesAndSmallBatchesOvertakeIt) {
  FakeSource source(/*finite=*/false);
  std::string words;
  for (int i = 0; i < 40; ++i) {
    words += 'w';
    words += std::to_string(i % 10);
    words += ' ';
  }
  Record same;  // the document's id again: must not overtake it
  same.id = "doc";
  same.op = Record::Op::kDelete;
  source.Offer({Make("doc", words), Make("small", "a b")});
  WordsEmbedder embedder(6);  // chunks of 4 pieces: 10 chunks of 6 tokens
  std::atomic<int> slices{0};
  embedder.on_embed = [&](size_t) {
    ++slices;
    std::this_thread::sleep_for(20ms);
  };
  ItemSink sink;
  RuntimeOptions o = FastOptions();  // budget 8 tokens: one chunk per slice
  o.chunking.overlap_tokens = 0;
  o.chunking.split = ChunkingOptions::Split::kTokens;
  Runtime rt(source, &embedder, {&sink}, o);
  std::atomic<bool> stop{false};
  std::thread run([&] { rt.Run(stop); });
  ASSERT_TRUE(WaitFor([&] { return slices.load() >= 3; }));
  source.Offer({same});
  ASSERT_TRUE(WaitFor([&] { return source.acked().size() == 3; }));
  stop = true;
  run.join();
  EXPECT_EQ(source.acked(), (std::vector<std::string>{"doc", "small", "doc"}))
      << "acks stay in read order";
  const auto calls = sink.Calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(std::get<0>(calls[0][0]), "small") << "the small batch overtook the long document";
  EXPECT_EQ(calls[1].size(), 10u) << "the document's chunks in one write";
  EXPECT_EQ(std::get<0>(calls[2][0]), "doc") << "a delete of the document waits for it";
  EXPECT_TRUE(std::get<1>(calls[2][0]));
  EXPECT_GE(embedder.Batches().size(), 11u) << "the document took a slice per chunk";
}

}  // namespace
}  // namespace embedstream::pipeline

// HTTP ingest as a pipeline source: the store's outbox (NextOutbox,
// MarkDelivered) read and acked through the real Runtime, with a fake
// embedder and sink (tests/unit/pipeline/runtime_test.cc has the runtime's
// own rules).

#include "sources/http_source.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "pipeline/runtime.h"
#include "store/internal/sqlite_db.h"
#include "store/store_test_util.h"

namespace embedstream::sources {
namespace {

using store::EmbeddedStore;
using store::MessageStatus;
using store::testing::TempDir;

constexpr size_t kDim = 8;

std::string Name(const char* prefix, int i) {
  std::string out(prefix);
  out += std::to_string(i);
  return out;
}

std::unique_ptr<EmbeddedStore> OpenStore(const TempDir& dir) {
  auto s = EmbeddedStore::Open({.dir = dir.path(), .dim = kDim, .model_name = "m"});
  EXPECT_TRUE(s.ok()) << s.error().ToString();
  return std::move(*s);
}

class FakeEmbedder : public pipeline::Embedder {
 public:
  size_t dim() const override { return kDim; }
  std::vector<int32_t> Tokenize(std::string_view text) override {
    return std::vector<int32_t>(1 + text.size() / 4, 1);
  }
  void Embed(const std::vector<std::vector<int32_t>>& tokens, float* out) override {
    for (size_t i = 0; i < tokens.size() * kDim; ++i) out[i] = (i % kDim == 0) ? 1.0f : 0.0f;
  }
};

// Records what it was given; can be made unavailable.
class RecordingSink : public pipeline::Sink {
 public:
  const std::string& name() const override { return name_; }
  pipeline::WriteResult Write(std::span<const pipeline::SinkItem> items) override {
    if (down) return pipeline::WriteResult::Unavailable("down");
    std::lock_guard lock(mu);
    for (const auto& it : items) {
      ids.push_back(it.record->id);
      texts.push_back(it.record->text);
    }
    return pipeline::WriteResult::Ok();
  }
  std::atomic<bool> down{false};
  std::mutex mu;
  std::vector<std::string> ids, texts;

 private:
  const std::string name_ = "fake";
};

// Runs a runtime over the store's outbox until `done` holds (or 10 s).
template <typename Done>
void RunUntil(EmbeddedStore& store, RecordingSink& sink, Done done) {
  HttpIngestSource source(store, "m");
  FakeEmbedder embedder;
  pipeline::RuntimeOptions ro;
  ro.batch_max_wait = std::chrono::milliseconds(5);
  ro.drain_timeout = std::chrono::milliseconds(300);
  ro.guard.backoff = {std::chrono::milliseconds(5), std::chrono::milliseconds(20)};
  pipeline::Runtime runtime(source, &embedder, {&sink}, ro);
  std::atomic<bool> stop{false};
  std::thread t([&] { runtime.Run(stop); });
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done(runtime.stats()) && std::chrono::steady_clock::now() < until) {
    source.Notify();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  t.join();
}

TEST(StoreOutbox, PutMessagesAreInTheOutboxInQueuedOrderUntilDelivered) {
  TempDir dir("outbox");
  auto store = OpenStore(dir);
  ASSERT_TRUE(store
                  ->PutMessages(std::vector<store::NewMessage>{
                      {"a", "one", ""}, {"b", "two", ""}, {"c", "three", ""}})
                  .ok());
  EmbeddedStore::OutboxCursor cursor;
  auto first = store->NextOutbox(cursor, 2);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].id, "a");
  EXPECT_EQ((*first)[1].id, "b");
  auto rest = store->NextOutbox(cursor, 10);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].id, "c");
  EXPECT_TRUE(store->NextOutbox(cursor, 10)->empty()) << "the cursor moved past every row";

  // Delivered rows leave the outbox; a fresh cursor sees only the others.
  std::vector<std::pair<std::string, int64_t>> delivered = {{"a", (*first)[0].revision}};
  EXPECT_EQ(*store->MarkDelivered(delivered, "m"), 1u);
  EmbeddedStore::OutboxCursor fresh;
  auto left = store->NextOutbox(fresh, 10);
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].id, "b");
  // Not embedded by any store sink: delivered means "embedded", no vector.
  auto a = store->Get("a");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->status, MessageStatus::embedded);
  EXPECT_EQ((*a)->model_name, "m");
}

TEST(StoreOutbox, ARequeuedTextComesAgainAndAStaleDeliveryChangesNothing) {
  TempDir dir("outbox-requeue");
  auto store = OpenStore(dir);
  ASSERT_TRUE(store->PutMessage("a", "old text", "").ok());
  EmbeddedStore::OutboxCursor cursor;
  auto read = store->NextOutbox(cursor, 10);
  ASSERT_EQ(read->size(), 1u);
  const int64_t old_revision = (*read)[0].revision;
  ASSERT_TRUE(store->PutMessage("a", "new text", "").ok());  // while in flight
  auto again = store->NextOutbox(cursor, 10);
  ASSERT_EQ(again->size(), 1u) << "the re-queued message is read again past the cursor";
  EXPECT_EQ((*again)[0].text, "new text");
  EXPECT_GT((*again)[0].revision, old_revision);
  std::vector<std::pair<std::string, int64_t>> stale = {{"a", old_revision}};
  EXPECT_EQ(*store->MarkDelivered(stale, "m"), 0u);
  EmbeddedStore::OutboxCursor fresh;
  EXPECT_EQ(store->NextOutbox(fresh, 10)->size(), 1u) << "the new text is still owed";
}

TEST(StoreOutbox, RowsFromPutEmbeddedAreNotInTheOutbox) {
  TempDir dir("outbox-embedded");
  auto store = OpenStore(dir);
  std::vector<store::EmbeddedMessage> rows = {
      {"k1", "from kafka", "", std::vector<float>(kDim, 0.5f)}};
  ASSERT_TRUE(store->PutEmbedded(rows, "m").ok());
  rows[0].text = "changed in kafka";
  ASSERT_TRUE(store->PutEmbedded(rows, "m").ok());
  EmbeddedStore::OutboxCursor cursor;
  EXPECT_TRUE(store->NextOutbox(cursor, 10)->empty());
}

TEST(HttpIngestSource, EveryMessageReachesTheSinkAndIsDeliveredOnce) {
  TempDir dir("http-source");
  auto store = OpenStore(dir);
  std::vector<store::NewMessage> msgs;
  for (int i = 0; i < 300; ++i) msgs.push_back({Name("m", i), Name("text ", i), ""});
  ASSERT_TRUE(store->PutMessages(msgs).ok());
  RecordingSink sink;
  RunUntil(*store, sink, [](const pipeline::RuntimeStats& s) { return s.acked.load() >= 300; });
  ASSERT_EQ(sink.ids.size(), 300u);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(sink.ids[static_cast<size_t>(i)], Name("m", i));
  EmbeddedStore::OutboxCursor cursor;
  EXPECT_TRUE(store->NextOutbox(cursor, 10)->empty()) << "every message was marked delivered";
  auto counts = store->Stats();
  EXPECT_EQ(counts->embedded, 300u);
  EXPECT_EQ(counts->pending, 0u);
}

TEST(HttpIngestSource, MessagesNotDeliveredBeforeAStopAreReadAgainAfterARestart) {
  TempDir dir("http-source-restart");
  {
    auto store = OpenStore(dir);
    ASSERT_TRUE(
        store->PutMessages(std::vector<store::NewMessage>{{"x", "one", ""}, {"y", "two", ""}})
            .ok());
    RecordingSink down;
    down.down = true;  // never takes them: nothing is acked
    RunUntil(*store, down, [](const pipeline::RuntimeStats& s) { return s.read.load() >= 2; });
    EXPECT_TRUE(down.ids.empty());
  }
  auto store = OpenStore(dir);  // a restart: a new cursor, the outbox as it was
  RecordingSink sink;
  RunUntil(*store, sink, [](const pipeline::RuntimeStats& s) { return s.acked.load() >= 2; });
  EXPECT_EQ(sink.ids, (std::vector<std::string>{"x", "y"}));
}

TEST(StoreOutbox, AStoreFromBeforeTheOutboxRedeliversNothingItHadEmbedded) {
  TempDir dir("outbox-migrate");
  {
    auto store = OpenStore(dir);
    ASSERT_TRUE(
        store->PutMessages(std::vector<store::NewMessage>{{"done", "t1", ""}, {"todo", "t2", ""}})
            .ok());
    ASSERT_TRUE(store->StoreEmbeddings({{"done", std::vector<float>(kDim, 0.5f), 0}}, "m").ok());
  }
  {
    // Make it a store written before acked_revision existed.
    auto db = store::internal::SqliteDb::Open(dir.path() / "store.db", false);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(
        db->Exec("DROP INDEX messages_outbox; ALTER TABLE messages DROP COLUMN acked_revision")
            .ok());
  }
  auto store = OpenStore(dir);
  EmbeddedStore::OutboxCursor cursor;
  auto owed = store->NextOutbox(cursor, 10);
  ASSERT_TRUE(owed.ok());
  ASSERT_EQ(owed->size(), 1u) << "only the message still pending is owed after the upgrade";
  EXPECT_EQ((*owed)[0].id, "todo");
}

}  // namespace
}  // namespace embedstream::sources

#include "store/embedded_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "store_test_util.h"

namespace embedstream::store {
namespace {

using testing::Dot;
using testing::Name;
using testing::RandomUnit;
using testing::TempDir;

StoreOptions SmallOptions(const std::filesystem::path& dir, size_t dim = 8) {
  StoreOptions o;
  o.dir = dir;
  o.dim = dim;
  o.model_name = "test-model";
  return o;
}

std::unique_ptr<EmbeddedStore> MustOpen(const StoreOptions& o) {
  auto s = EmbeddedStore::Open(o);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().ToString());
  return s.ok() ? std::move(*s) : nullptr;
}

std::vector<float> Axis(size_t dim, size_t i) {
  std::vector<float> v(dim, 0.0f);
  v[i] = 1.0f;
  return v;
}

TEST(EmbeddedStore, PutGetListStats) {
  TempDir dir("store");
  auto store = MustOpen(SmallOptions(dir.path()));
  ASSERT_TRUE(store);
  auto created = store->PutMessage("a", "alpha", R"({"user_id":"u1"})");
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(*created);
  ASSERT_TRUE(*store->PutMessage("b", "beta", ""));
  ASSERT_TRUE(*store->PutMessage("c", "gamma", R"({"n":3})"));

  auto got = store->Get("a");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->text, "alpha");
  EXPECT_EQ((*got)->metadata_json, R"({"user_id":"u1"})");
  EXPECT_EQ((*got)->status, MessageStatus::pending);
  EXPECT_GT((*got)->created_at, 0);
  auto missing = store->Get("zzz");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  auto page = store->List(2, 0);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].id, "c");  // newest first
  EXPECT_EQ((*page)[1].id, "b");
  auto rest = store->List(10, 2);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].id, "a");

  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->total, 3u);
  EXPECT_EQ(stats->pending, 3u);
  EXPECT_EQ(stats->embedded, 0u);
  EXPECT_GE(stats->oldest_pending_age_s, 0.0);
}

TEST(EmbeddedStore, RejectsBadInput) {
  TempDir dir("store");
  auto store = MustOpen(SmallOptions(dir.path()));
  ASSERT_TRUE(store);
  EXPECT_EQ(store->PutMessage("", "x", "").error().code, errc::invalid_argument);
  EXPECT_EQ(store->PutMessage("a", "x", "[1]").error().code, errc::invalid_argument);
  EXPECT_EQ(store->PutMessage("a", "x", "{bad").error().code, errc::invalid_argument);
  ASSERT_TRUE(*store->PutMessage("a", "x", ""));
  EXPECT_EQ(store->StoreEmbeddings({{"a", {1.0f, 2.0f}}}, "m").error().code,
            errc::invalid_argument);
  EXPECT_EQ(store->StoreEmbeddings({{"a", std::vector<float>(8, 0.0f)}}, "m").error().code,
            errc::invalid_argument);
  EXPECT_EQ(store->Search({1.0f}, 3, {}).error().code, errc::invalid_argument);
  Filter bad;
  bad.equals.push_back({"metadata.user_id", "not json"});
  EXPECT_EQ(store->Search(Axis(8, 0), 3, bad).error().code, errc::invalid_argument);
  EXPECT_EQ(store->MarkFailed("nope", "x").error().code, errc::not_found);
}

TEST(EmbeddedStore, IdempotentPut) {
  TempDir dir("store");
  auto store = MustOpen(SmallOptions(dir.path()));
  ASSERT_TRUE(store);
  ASSERT_TRUE(*store->PutMessage("a", "alpha", ""));
  ASSERT_EQ(*store->StoreEmbeddings({{"a", Axis(8, 0)}}, "m1"), 1u);

  // Replay: nothing changes, still embedded.
  auto again = store->PutMessage("a", "alpha", "");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  auto got = *store->Get("a");
  EXPECT_EQ(got->status, MessageStatus::embedded);
  EXPECT_EQ(got->revision, 1);
  EXPECT_EQ(store->indexed_count(), 1u);

  // Changed text: pending again, out of the index, new revision.
  auto changed = store->PutMessage("a", "alpha v2", "");
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  got = *store->Get("a");
  EXPECT_EQ(got->status, MessageStatus::pending);
  EXPECT_EQ(got->text, "alpha v2");
  EXPECT_EQ(got->revision, 2);
  EXPECT_TRUE(got->model_name.empty());
  EXPECT_EQ(store->indexed_count(), 0u);
  EXPECT_TRUE(store->Search(Axis(8, 0), 5, {})->empty());
  EXPECT_EQ(store->Stats()->total, 1u);

  // A vector computed for revision 1 must not land on revision 2.
  ASSERT_EQ(*store->StoreEmbeddings(std::vector<Embedding>{{"a", Axis(8, 1), 1}}, "m1"), 0u);
  EXPECT_EQ((*store->Get("a"))->status, MessageStatus::pending);
  ASSERT_EQ(*store->StoreEmbeddings(std::vector<Embedding>{{"a", Axis(8, 1), 2}}, "m1"), 1u);
  EXPECT_EQ((*store->Get("a"))->status, MessageStatus::embedded);
}

TEST(EmbeddedStore, PutMessagesIsOneOrderedTransaction) {
  TempDir dir("store");
  auto store = MustOpen(SmallOptions(dir.path()));
  ASSERT_TRUE(store);
  ASSERT_TRUE(*store->PutMessage("old", "old text", ""));
  ASSERT_EQ(*store->StoreEmbeddings({{"old", Axis(8, 1)}}, ""), 1u);
  const std::vector<NewMessage> batch = {
      {"a", "alpha", R"({"user_id":"u1"})"},
      {"old", "old text", ""},  // replay of an embedded message: unchanged
      {"a", "alpha", ""},       // same batch, same id: sees the first item
      {"old", "new text", ""},  // changed text: re-queued
  };
  auto out = store->PutMessages(batch);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  ASSERT_EQ(out->size(), 4u);
  EXPECT_TRUE((*out)[0].created);
  EXPECT_FALSE((*out)[1].created);
  EXPECT_FALSE((*out)[1].requeued);
  EXPECT_EQ((*out)[1].status, MessageStatus::embedded);
  EXPECT_FALSE((*out)[2].created);
  EXPECT_EQ((*out)[2].status, MessageStatus::pending);
  EXPECT_TRUE((*out)[3].requeued);
  EXPECT_EQ((*out)[3].status, MessageStatus::pending);
  EXPECT_EQ(store->indexed_count(), 0u);  // the re-queued vector left the index
  auto counts = store->Stats();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->total, 2u);
  EXPECT_EQ(counts->pending, 2u);
  EXPECT_EQ((*store->Get("a"))->metadata_json, "");  // the later item's metadata

  // One invalid item: nothing of the batch is written.
  const std::vector<NewMessage> bad = {{"x", "fine", ""}, {"y", "bad meta", "[1]"}};
  auto rejected = store->PutMessages(bad);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.error().code, errc::invalid_argument);
  EXPECT_FALSE(store->Get("x")->has_value());
}

TEST(EmbeddedStore, PutEmbeddedUpsertsSearchableRows) {
  TempDir dir("store");
  auto store = MustOpen(SmallOptions(dir.path()));
  ASSERT_TRUE(store);
  std::vector<EmbeddedMessage> batch = {{"k1", "one", R"({"topic":"t"})", Axis(8, 0)},
                                        {"k2", "two", "", Axis(8, 3)}};
  ASSERT_EQ(*store->PutEmbedded(batch, "m"), 2u);
  // A replay rewrites the same rows: still two, same revision.
  ASSERT_EQ(*store->PutEmbedded(batch, "m"), 2u);
  auto k1 = *store->Get("k1");
  ASSERT_TRUE(k1.has_value());
  EXPECT_EQ(k1->status, MessageStatus::embedded);
  EXPECT_EQ(k1->model_name, "m");
  EXPECT_EQ(k1->revision, 1);
  EXPECT_EQ(store->Stats()->total, 2u);
  EXPECT_EQ(store->indexed_count(), 2u);
  auto hits = store->Search(Axis(8, 3), 1, {});
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].id, "k2");
  // A new text for k1 bumps its revision.
  batch[0].text = "uno";
  ASSERT_EQ(*store->PutEmbedded(std::span(batch).first(1), "m"), 1u);
  EXPECT_EQ((*store->Get("k1"))->revision, 2);
  // Bad vectors are refused before anything is written.
  std::vector<EmbeddedMessage> bad = {{"k3", "three", "", std::vector<float>(8, 0.0f)}};
  EXPECT_FALSE(store->PutEmbedded(bad, "m").ok());
  EXPECT_FALSE(store->Get("k3")->has_value());
}

TEST(EmbeddedStore, PendingToEmbeddedWithModelName) {
  TempDir dir("store");
  auto store = MustOpen(SmallOptions(dir.path()));
  ASSERT_TRUE(store);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(*store->PutMessage(Name("m", i), Name("text ", i), ""));
  }
  auto batch = store->NextPending(3);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->size(), 3u);
  EXPECT_EQ((*batch)[0].id, "m0");  // oldest first
  EXPECT_EQ((*batch)[2].id, "m2");
  std::vector<Embedding> vecs;
  for (const auto& m : *batch) vecs.push_back({m.id, Axis(8, vecs.size()), m.revision});
  ASSERT_EQ(*store->StoreEmbeddings(vecs, "sentence-transformers/all-MiniLM-L6-v2"), 3u);

  auto m0 = *store->Get("m0");
  EXPECT_EQ(m0->status, MessageStatus::embedded);
  EXPECT_EQ(m0->model_name, "sentence-transformers/all-MiniLM-L6-v2");
  EXPECT_GT(m0->embedded_at, 0);
  auto next = *store->NextPending(10);
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0].id, "m3");
  auto stats = *store->Stats();
  EXPECT_EQ(stats.pending, 2u);
  EXPECT_EQ(stats.embedded, 3u);
  // The default model name from the options.
  ASSERT_EQ(*store->StoreEmbeddings({{"m3", Axis(8, 3)}}, ""), 1u);
  EXPECT_EQ((*store->Get("m3"))->model_name, "test-model");
}

TEST(EmbeddedStore, MarkFailedKeepsReason) {
  TempDir dir("store");
  auto store = MustOpen(SmallOptions(dir.path()));
  ASSERT_TRUE(store);
  ASSERT_TRUE(*store->PutMessage("a", "alpha", ""));
  ASSERT_TRUE(store->MarkFailed("a", "text too long").ok());
  auto got = *store->Get("a");
  EXPECT_EQ(got->status, MessageStatus::failed);
  EXPECT_EQ(got->reason, "text too long");
  EXPECT_STREQ(MessageStatusName(got->status), "failed");
  EXPECT_TRUE(store->NextPending(10)->empty());
  auto stats = *store->Stats();
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.pending, 0u);
  EXPECT_EQ(stats.oldest_pending_age_s, 0.0);
}

TEST(EmbeddedStore, ExactSearchFindsPlantedVector) {
  TempDir dir("store");
  auto store = MustOpen(SmallOptions(dir.path(), 16));
  ASSERT_TRUE(store);
  std::mt19937 rng(7);
  std::vector<Embedding> vecs;
  for (int i = 0; i < 50; ++i) {
    const std::string id = Name("m", i);
    ASSERT_TRUE(*store->PutMessage(id, std::string("text ") + id, ""));
    vecs.push_back({id, RandomUnit(16, rng)});
  }
  ASSERT_EQ(*store->StoreEmbeddings(vecs, "m"), 50u);
  auto hits = store->Search(vecs[17].vector, 3, {});
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 3u);
  EXPECT_EQ((*hits)[0].id, "m17");
  EXPECT_EQ((*hits)[0].text, "text m17");
  EXPECT_NEAR((*hits)[0].score, 1.0f, 1e-5);
  EXPECT_GE((*hits)[0].score, (*hits)[1].score);
  EXPECT_GE((*hits)[1].score, (*hits)[2].score);
  // An unnormalised query gives the same cosine ranking.
  auto scaled = vecs[17].vector;
  for (auto& x : scaled) x *= 3.0f;
  EXPECT_EQ((*store->Search(scaled, 1, {}))[0].id, "m17");
}

// Lists and searches are bounded in bytes as well as rows: 1,000 big texts
// must not all be read for one page.
TEST(EmbeddedStore, ListAndSearchPagesStopAtTheirByteBudget) {
  TempDir dir("store");
  auto store = MustOpen(SmallOptions(dir.path(), 16));
  ASSERT_TRUE(store);
  std::mt19937 rng(5);
  std::vector<Embedding> vecs;
  const std::string big(10000, 'x');
  for (int i = 0; i < 30; ++i) {
    const std::string id = Name("m", i);
    ASSERT_TRUE(*store->PutMessage(id, big + id, ""));
    vecs.push_back({id, RandomUnit(16, rng)});
  }
  ASSERT_EQ(*store->StoreEmbeddings(vecs, "m"), 30u);

  auto all = store->List(30, 0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 30u);
  auto page = store->List(30, 0, 25000);  // crosses the budget on the third row
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->size(), 3u);
  EXPECT_EQ((*page)[0].id, (*all)[0].id);
  auto one = store->List(30, 5, 1);  // a page is never empty while rows remain
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].id, (*all)[5].id);

  auto ranked = store->Search(vecs[3].vector, 30, {});
  ASSERT_TRUE(ranked.ok());
  ASSERT_EQ(ranked->size(), 30u);
  auto first = store->SearchPaged(vecs[3].vector, 30, {}, 0, 25000);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->cut);
  ASSERT_EQ(first->hits.size(), 3u);
  EXPECT_EQ(first->hits[0].id, "m3");
  auto second = store->SearchPaged(vecs[3].vector, 30, {}, 3, 25000);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->hits.size(), 3u);
  EXPECT_EQ(second->hits[0].id, (*ranked)[3].id);
  EXPECT_EQ(second->hits[2].id, (*ranked)[5].id);
  auto last = store->SearchPaged(vecs[3].vector, 30, {}, 28, 25000);
  ASSERT_TRUE(last.ok());
  EXPECT_FALSE(last->cut);
  ASSERT_EQ(last->hits.size(), 2u);
  EXPECT_EQ(last->hits[1].id, (*ranked)[29].id);
  auto past = store->SearchPaged(vecs[3].vector, 30, {}, 30, 25000);
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->hits.empty());
  // With a filter, the skip counts only hits that pass it.
  Filter none;
  none.equals.push_back({"metadata.nope", "1"});
  auto filtered = store->SearchPaged(vecs[3].vector, 30, none, 0, 25000);
  ASSERT_TRUE(filtered.ok());
  EXPECT_TRUE(filtered->hits.empty());
}

TEST(EmbeddedStore, FilterNarrowsResults) {
  TempDir dir("store");
  auto store = MustOpen(SmallOptions(dir.path(), 16));
  ASSERT_TRUE(store);
  std::mt19937 rng(11);
  std::vector<Embedding> vecs;
  for (int i = 0; i < 40; ++i) {
    const std::string id = Name("m", i);
    const std::string meta = std::string(R"({"user_id":")") + (i % 4 == 0 ? "u1" : "u2") +
                             R"(","n":)" + std::to_string(i % 3) + R"(,"product":{"category":")" +
                             (i % 2 == 0 ? "book" : "toy") + R"("}})";
    ASSERT_TRUE(*store->PutMessage(id, "t", meta));
    vecs.push_back({id, RandomUnit(16, rng)});
  }
  ASSERT_EQ(*store->StoreEmbeddings(vecs, "m"), 40u);
  Filter f;
  f.equals.push_back({"metadata.user_id", "\"u1\""});
  auto hits = store->Search(vecs[1].vector, 100, f);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 10u);
  for (const auto& h : *hits) EXPECT_NE(h.metadata_json.find("\"u1\""), std::string::npos);

  f.equals.push_back({"n", "0"});
  f.equals.push_back({"metadata.product.category", "\"book\""});
  hits = store->Search(vecs[0].vector, 100, f);
  ASSERT_TRUE(hits.ok());
  // i % 4 == 0 and i % 3 == 0: 0, 12, 24, 36 (all even: books).
  std::set<std::string> ids;
  for (const auto& h : *hits) ids.insert(h.id);
  EXPECT_EQ(ids, (std::set<std::string>{"m0", "m12", "m24", "m36"}));
  EXPECT_EQ((*hits)[0].id, "m0");
}

TEST(EmbeddedStore, HnswRecallAgainstExact) {
  TempDir dir("store");
  auto opts = SmallOptions(dir.path(), 384);
  opts.exact_search_below = 100;
  auto store = MustOpen(opts);
  ASSERT_TRUE(store);
  std::mt19937 rng(42);
  constexpr int kCount = 2000;
  std::vector<Embedding> vecs;
  for (int i = 0; i < kCount; ++i) {
    const std::string id = Name("m", i);
    ASSERT_TRUE(
        *store->PutMessage(id, "t", i % 2 == 0 ? R"({"parity":"even"})" : R"({"parity":"odd"})"));
    vecs.push_back({id, RandomUnit(384, rng)});
  }
  for (int start = 0; start < kCount; start += 250) {
    std::vector<Embedding> batch(vecs.begin() + start, vecs.begin() + start + 250);
    ASSERT_EQ(*store->StoreEmbeddings(batch, "m"), 250u);
  }
  EXPECT_EQ(store->indexed_count(), static_cast<size_t>(kCount));

  constexpr int kQueries = 50;
  constexpr size_t kK = 10;
  size_t found = 0;
  for (int qi = 0; qi < kQueries; ++qi) {
    auto q = RandomUnit(384, rng);
    std::vector<std::pair<float, std::string>> exact;
    for (const auto& e : vecs) exact.emplace_back(Dot(q, e.vector), e.id);
    std::partial_sort(exact.begin(), exact.begin() + kK, exact.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    std::set<std::string> truth;
    for (size_t i = 0; i < kK; ++i) truth.insert(exact[i].second);
    auto hits = store->Search(q, kK, {});
    ASSERT_TRUE(hits.ok());
    ASSERT_EQ(hits->size(), kK);
    for (const auto& h : *hits) found += truth.count(h.id);
  }
  const double recall = static_cast<double>(found) / (kQueries * kK);
  std::printf("hnsw recall@10 over %d random 384-d vectors: %.3f\n", kCount, recall);
  EXPECT_GE(recall, 0.95);

  // Filtered HNSW path: every hit passes the filter and there are k of them.
  Filter f;
  f.equals.push_back({"metadata.parity", "\"odd\""});
  auto hits = store->Search(vecs[1].vector, kK, f);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), kK);
  EXPECT_EQ((*hits)[0].id, "m1");
  for (const auto& h : *hits) EXPECT_EQ(h.metadata_json, R"({"parity":"odd"})");
  // A filter too narrow for the over-fetch falls back to the exact scan.
  ASSERT_TRUE(*store->PutMessage("rare", "t", R"({"parity":"rare"})"));
  ASSERT_EQ(*store->StoreEmbeddings({{"rare", RandomUnit(384, rng)}}, "m"), 1u);
  Filter rare;
  rare.equals.push_back({"parity", "\"rare\""});
  hits = store->Search(vecs[0].vector, kK, rare);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].id, "rare");
}

TEST(EmbeddedStore, ReopenKeepsEverythingWithSnapshotAndCatchUp) {
  TempDir dir("store");
  TempDir saved("store-snap");
  auto opts = SmallOptions(dir.path(), 16);
  opts.exact_search_below = 10;  // exercise HNSW after reopen too
  std::mt19937 rng(3);
  std::vector<Embedding> vecs;
  for (int i = 0; i < 80; ++i) vecs.push_back({Name("m", i), RandomUnit(16, rng)});
  {
    auto store = MustOpen(opts);
    ASSERT_TRUE(store);
    for (const auto& e : vecs)
      ASSERT_TRUE(*store->PutMessage(e.id, std::string("text ") + e.id, ""));
    ASSERT_EQ(*store->StoreEmbeddings({vecs.begin(), vecs.begin() + 50}, "m"), 50u);
    ASSERT_TRUE(store->SaveSnapshot().ok());
    // Keep this snapshot: it covers only the first 50 rows.
    for (const char* f : {"index.hnsw", "index.meta"}) {
      std::filesystem::copy_file(dir.path() / f, saved.path() / f);
    }
    ASSERT_EQ(*store->StoreEmbeddings({vecs.begin() + 50, vecs.end()}, "m"), 30u);
    ASSERT_FALSE(*store->PutMessage("m3", "changed", ""));  // leaves the index
    ASSERT_TRUE(store->MarkFailed("m60", "boom").ok());     // leaves the index
  }
  // Put the old snapshot back, as if the process died before saving again.
  for (const char* f : {"index.hnsw", "index.meta"}) {
    std::filesystem::copy_file(saved.path() / f, dir.path() / f,
                               std::filesystem::copy_options::overwrite_existing);
  }
  auto store = MustOpen(opts);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->indexed_count(), 78u);
  auto stats = *store->Stats();
  EXPECT_EQ(stats.total, 80u);
  EXPECT_EQ(stats.embedded, 78u);
  EXPECT_EQ(stats.pending, 1u);
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ((*store->Get("m60"))->reason, "boom");
  EXPECT_EQ((*store->Search(vecs[70].vector, 1, {}))[0].id, "m70");  // caught up
  EXPECT_EQ((*store->Search(vecs[10].vector, 1, {}))[0].id, "m10");  // from the snapshot
  for (int idx : {3, 60}) {
    auto hits = *store->Search(vecs[static_cast<size_t>(idx)].vector, 80, {});
    for (const auto& h : hits) EXPECT_NE(h.id, vecs[static_cast<size_t>(idx)].id);
  }
}

TEST(EmbeddedStore, CorruptSnapshotIsRebuilt) {
  TempDir dir("store");
  auto opts = SmallOptions(dir.path(), 16);
  opts.exact_search_below = 10;
  std::mt19937 rng(5);
  std::vector<Embedding> vecs;
  for (int i = 0; i < 60; ++i) vecs.push_back({Name("m", i), RandomUnit(16, rng)});
  {
    auto store = MustOpen(opts);
    ASSERT_TRUE(store);
    for (const auto& e : vecs) ASSERT_TRUE(*store->PutMessage(e.id, "t", ""));
    ASSERT_EQ(*store->StoreEmbeddings(vecs, "m"), 60u);
  }  // snapshot on close
  const auto index_path = dir.path() / "index.hnsw";
  ASSERT_TRUE(std::filesystem::exists(index_path));
  const auto size = std::filesystem::file_size(index_path);
  {
    // Scribble over the header and the middle.
    std::fstream f(index_path, std::ios::in | std::ios::out | std::ios::binary);
    const std::string junk(64, '\xff');
    f.seekp(0);
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  {
    auto store = MustOpen(opts);
    ASSERT_TRUE(store);
    EXPECT_EQ(store->indexed_count(), 60u);
    EXPECT_EQ((*store->Search(vecs[33].vector, 1, {}))[0].id, "m33");
  }
  // Truncated snapshot and a missing meta file: rebuilt as well.
  std::filesystem::resize_file(index_path, std::filesystem::file_size(index_path) / 3);
  {
    auto store = MustOpen(opts);
    ASSERT_TRUE(store);
    EXPECT_EQ(store->indexed_count(), 60u);
  }
  std::filesystem::remove(dir.path() / "index.meta");
  auto store = MustOpen(opts);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->indexed_count(), 60u);
  EXPECT_EQ((*store->Search(vecs[5].vector, 1, {}))[0].id, "m5");
}

TEST(EmbeddedStore, RefusesWrongDimAndSecondOpener) {
  TempDir dir("store");
  auto store = MustOpen(SmallOptions(dir.path(), 8));
  ASSERT_TRUE(store);
  auto second = EmbeddedStore::Open(SmallOptions(dir.path(), 8));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, errc::unavailable);
  store.reset();
  auto wrong = EmbeddedStore::Open(SmallOptions(dir.path(), 16));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, errc::invalid_argument);
}

TEST(EmbeddedStore, ConcurrentWriterReaderAndWorker) {
  TempDir dir("store");
  auto store = MustOpen(SmallOptions(dir.path(), 16));
  ASSERT_TRUE(store);
  std::atomic<bool> done{false};
  std::thread producer([&] {
    for (int i = 0; i < 300; ++i) {
      EXPECT_TRUE(store->PutMessage(Name("m", i), "t", "").ok());
    }
    done = true;
  });
  std::thread worker([&] {
    std::mt19937 rng(1);
    for (;;) {
      auto batch = store->NextPending(32);
      ASSERT_TRUE(batch.ok());
      if (batch->empty()) {
        if (done) break;
        std::this_thread::yield();
        continue;
      }
      std::vector<Embedding> vecs;
      for (const auto& m : *batch) vecs.push_back({m.id, RandomUnit(16, rng), m.revision});
      ASSERT_TRUE(store->StoreEmbeddings(vecs, "m").ok());
    }
  });
  std::mt19937 rng(2);
  while (!done) {
    ASSERT_TRUE(store->Search(RandomUnit(16, rng), 5, {}).ok());
    ASSERT_TRUE(store->Stats().ok());
    ASSERT_TRUE(store->List(10, 0).ok());
  }
  producer.join();
  worker.join();
  auto stats = *store->Stats();
  EXPECT_EQ(stats.total, 300u);
  EXPECT_EQ(stats.embedded, 300u);
  EXPECT_EQ(store->indexed_count(), 300u);
}

// Prints the cost of each durability mode; asserts only that both work.
TEST(EmbeddedStore, PutThroughputBySyncMode) {
  for (bool full : {true, false}) {
    TempDir dir("store");
    auto opts = SmallOptions(dir.path());
    opts.sync_full = full;
    auto store = MustOpen(opts);
    ASSERT_TRUE(store);
    constexpr int kPuts = 500;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kPuts; ++i) {
      ASSERT_TRUE(store->PutMessage(Name("m", i), "some text to embed", "").ok());
    }
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("synchronous=%s: %.0f puts/s (%d single-row commits)\n", full ? "FULL" : "NORMAL",
                kPuts / s, kPuts);
  }
}

}  // namespace
}  // namespace embedstream::store

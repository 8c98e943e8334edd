// EmbeddedStore::WriteDocuments and DeleteMessage: a document's chunks are
// replaced in one step (none of another chunk count remain), deletes remove a
// document and its chunks from search and lists, search groups chunks by
// document, and all of it survives a reopen (the index catch-up sees deletes).

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/embedded_store.h"
#include "store_test_util.h"
#include "test_util.h"

namespace embedstream::store {
namespace {

using testing::Name;
using testing::RandomUnit;
using testing::TempDir;

constexpr size_t kDim = 16;

std::unique_ptr<EmbeddedStore> Open(const TempDir& dir) {
  auto s = EmbeddedStore::Open({.dir = dir.path(), .dim = kDim, .model_name = "m"});
  EXPECT_TRUE(s.ok()) << s.error().ToString();
  return std::move(*s);
}

// Document `id` as `n` chunks (n == 1: a whole text), vectors from `rng`.
std::vector<DocumentWrite> Document(const std::string& id, uint32_t n, std::mt19937& rng,
                                    std::vector<std::vector<float>>* vectors = nullptr) {
  std::vector<DocumentWrite> ops;
  for (uint32_t i = 0; i < n; ++i) {
    DocumentWrite op;
    op.id = id;
    op.text = Name("chunk text ", static_cast<int>(i));
    op.document_text = "the whole document";
    op.metadata_json = R"({"k":"v"})";
    op.chunk_index = i;
    op.chunk_count = n;
    op.char_start = i * 10;
    op.char_end = i * 10 + 9;
    op.vector = RandomUnit(kDim, rng);
    if (vectors != nullptr) vectors->push_back(op.vector);
    ops.push_back(std::move(op));
  }
  return ops;
}

// Ids of every hit for the query (group_by none), all of them.
std::vector<std::string> AllHits(EmbeddedStore& s, const std::vector<float>& q) {
  std::vector<std::string> ids;
  auto hits = s.Search(q, 1000, {});
  EXPECT_TRUE(hits.ok());
  for (const auto& h : *hits) ids.push_back(h.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(StoreDocuments, AShrinkingDocumentKeepsExactlyItsNewChunks) {
  TempDir dir("docs");
  std::mt19937 rng(1);
  auto s = Open(dir);
  ASSERT_TRUE(s->WriteDocuments(Document("doc", 10, rng), "m", false).ok());
  const auto q = RandomUnit(kDim, rng);
  EXPECT_EQ(AllHits(*s, q).size(), 10u);
  auto doc = s->Get("doc");
  ASSERT_TRUE(doc.ok() && doc->has_value());
  EXPECT_EQ((*doc)->text, "the whole document");
  EXPECT_EQ((*doc)->chunk_count, 10u);
  EXPECT_EQ((*doc)->chunks_embedded, 10u);

  ASSERT_TRUE(s->WriteDocuments(Document("doc", 3, rng), "m", false).ok());
  EXPECT_EQ(AllHits(*s, q), (std::vector<std::string>{"doc#0", "doc#1", "doc#2"}));
  EXPECT_EQ((*s->Get("doc"))->chunks_embedded, 3u);

  // Down to one chunk: the document's own row holds the vector.
  ASSERT_TRUE(s->WriteDocuments(Document("doc", 1, rng), "m", false).ok());
  EXPECT_EQ(AllHits(*s, q), (std::vector<std::string>{"doc"}));
  // And back up.
  ASSERT_TRUE(s->WriteDocuments(Document("doc", 2, rng), "m", false).ok());
  EXPECT_EQ(AllHits(*s, q), (std::vector<std::string>{"doc#0", "doc#1"}));
  // Chunks are not messages: the list shows the document once.
  auto list = s->List(100, 0);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, "doc");
  EXPECT_EQ(s->Stats()->total, 1u);
}

TEST(StoreDocuments, ADeleteRemovesTheDocumentAndItsChunksAndSurvivesAReopen) {
  TempDir dir("docs-del");
  std::mt19937 rng(2);
  const auto q = RandomUnit(kDim, rng);
  {
    auto s = Open(dir);
    auto ops = Document("a", 4, rng);
    auto b = Document("b", 1, rng);
    ops.insert(ops.end(), b.begin(), b.end());
    ASSERT_TRUE(s->WriteDocuments(ops, "m", false).ok());
    ASSERT_TRUE(s->SaveSnapshot().ok());  // the snapshot still holds a's chunks
    DocumentWrite del;
    del.remove = true;
    del.id = "a";
    DocumentWrite unknown = del;
    unknown.id = "never-written";
    ASSERT_TRUE(s->WriteDocuments(std::vector<DocumentWrite>{del, unknown}, "m", false).ok());
    EXPECT_EQ(AllHits(*s, q), (std::vector<std::string>{"b"}));
    EXPECT_FALSE(s->Get("a")->has_value());
    EXPECT_EQ(s->Stats()->total, 1u);
  }
  auto s = Open(dir);
  EXPECT_EQ(AllHits(*s, q), (std::vector<std::string>{"b"})) << "the catch-up saw the deletes";
  // A delete is idempotent; a re-put brings the id back.
  DocumentWrite del;
  del.remove = true;
  del.id = "a";
  ASSERT_TRUE(s->WriteDocuments(std::vector<DocumentWrite>{del}, "m", false).ok());
  ASSERT_TRUE(s->WriteDocuments(Document("a", 2, rng), "m", false).ok());
  EXPECT_EQ(AllHits(*s, q), (std::vector<std::string>{"a#0", "a#1", "b"}));
}

TEST(StoreDocuments, SearchGroupsChunksByDocument) {
  TempDir dir("docs-group");
  std::mt19937 rng(3);
  auto s = Open(dir);
  std::vector<std::vector<float>> vecs;
  ASSERT_TRUE(s->WriteDocuments(Document("long", 8, rng, &vecs), "m", false).ok());
  ASSERT_TRUE(s->WriteDocuments(Document("other", 1, rng), "m", false).ok());
  Filter group;
  group.group_by_parent = true;
  auto hits = s->Search(vecs[5], 10, group);  // the query is chunk 5's vector
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 2u) << "one hit per document";
  EXPECT_EQ((*hits)[0].id, "long#5");
  EXPECT_EQ((*hits)[0].parent_id, "long");
  EXPECT_EQ((*hits)[0].chunk_index, 5u);
  EXPECT_EQ((*hits)[0].chunk_count, 8u);
  EXPECT_EQ((*hits)[0].char_start, 50u);
  EXPECT_EQ((*hits)[0].char_end, 59u);
  EXPECT_EQ((*hits)[0].text, "chunk text 5");
  EXPECT_NEAR((*hits)[0].score, 1.0f, 1e-5);
  EXPECT_EQ((*hits)[1].id, "other");
  EXPECT_EQ(s->Search(vecs[5], 10, {})->size(), 9u) << "ungrouped: every chunk";
}

TEST(StoreDocuments, OutboxDeleteAndChunkedEmbedding) {
  TempDir dir("docs-outbox");
  std::mt19937 rng(4);
  auto s = Open(dir);
  ASSERT_TRUE(s->PutMessages(std::vector<NewMessage>{{"m", "a long text", "", 3}}).ok());
  EXPECT_EQ((*s->Get("m"))->chunk_count, 3u);
  EXPECT_EQ((*s->Get("m"))->chunks_embedded, 0u);
  EmbeddedStore::OutboxCursor cursor;
  auto out = s->NextOutbox(cursor, 10);
  ASSERT_TRUE(out.ok() && out->size() == 1u);
  const int64_t rev = (*out)[0].revision;
  auto ops = Document("m", 3, rng);
  for (auto& op : ops) op.revision = rev;
  ASSERT_TRUE(s->WriteDocuments(ops, "m", true).ok());
  auto m = s->Get("m");
  EXPECT_EQ((*m)->status, MessageStatus::embedded);
  EXPECT_EQ((*m)->text, "a long text") << "outbox mode keeps the message's text";
  EXPECT_EQ((*m)->chunks_embedded, 3u);
  // A stale revision is ignored.
  for (auto& op : ops) op.revision = rev + 7;
  auto stale = s->WriteDocuments(ops, "m", true);
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(*stale, 0u);

  // DELETE: gone from search at once, and in the outbox for the other sinks.
  auto existed = s->DeleteMessage("m");
  ASSERT_TRUE(existed.ok());
  EXPECT_TRUE(*existed);
  EXPECT_FALSE(s->Get("m")->has_value());
  EXPECT_TRUE(s->Search(RandomUnit(kDim, rng), 10, {})->empty());
  EmbeddedStore::OutboxCursor fresh;
  auto pending = s->NextOutbox(fresh, 10);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].status, MessageStatus::deleted);
  auto unknown = s->DeleteMessage("nobody");
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(*unknown) << "a delete of an unknown id succeeds";
}

}  // namespace
}  // namespace embedstream::store

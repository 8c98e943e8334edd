// VectorIndex on its own: the SIMD dot product against the plain loop, batch
// upserts (parallel inserts) against row-by-row upserts, the exact scan's
// top-k against a full ranking, and snapshots of a batch-built index.

#include "store/internal/vector_index.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "store/store_test_util.h"

namespace embedstream::store::internal {
namespace {

using testing::RandomUnit;
using testing::TempDir;

constexpr size_t kDim = 384;

std::vector<float> Rows(size_t n, size_t dim, std::mt19937& rng) {
  std::vector<float> out;
  out.reserve(n * dim);
  for (size_t i = 0; i < n; ++i) {
    const auto v = RandomUnit(dim, rng);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

std::vector<int64_t> Labels(const std::vector<ScoredLabel>& hits) {
  std::vector<int64_t> out;
  for (const auto& h : hits) out.push_back(h.second);
  return out;
}

TEST(DotProduct, FastPathMatchesReference) {
  std::mt19937 rng(7);
  // Sizes around every block edge of the kernel (64, 16, scalar tail).
  for (size_t n : {1, 3, 15, 16, 17, 63, 64, 65, 80, 127, 128, 129, 384, 385, 1000}) {
    const auto a = RandomUnit(n, rng);
    const auto b = RandomUnit(n, rng);
    EXPECT_NEAR(DotProduct(a.data(), b.data(), n), DotProductReference(a.data(), b.data(), n), 1e-5)
        << "n=" << n;
    EXPECT_NEAR(DotProduct(a.data(), a.data(), n), 1.0f, 1e-5) << "n=" << n;
  }
  // Unaligned inputs.
  const auto a = RandomUnit(kDim + 1, rng);
  const auto b = RandomUnit(kDim + 3, rng);
  EXPECT_NEAR(DotProduct(a.data() + 1, b.data() + 3, kDim),
              DotProductReference(a.data() + 1, b.data() + 3, kDim), 1e-5);
}

// Recall@10 of SearchHnsw against SearchExact over the given queries.
double Recall(const VectorIndex& index, const std::vector<float>& rows,
              const std::vector<size_t>& queries) {
  size_t hits = 0;
  for (size_t q : queries) {
    const auto exact = Labels(index.SearchExact(&rows[q * kDim], 10));
    const std::set<int64_t> want(exact.begin(), exact.end());
    for (const auto& h : index.SearchHnsw(&rows[q * kDim], 10)) hits += want.count(h.second);
  }
  return static_cast<double>(hits) / static_cast<double>(10 * queries.size());
}

TEST(VectorIndex, UpsertBatchMatchesRowByRowUpserts) {
  std::mt19937 rng(11);
  constexpr size_t kRows = 1500;
  const auto rows = Rows(kRows, kDim, rng);
  std::vector<int64_t> labels(kRows);
  for (size_t i = 0; i < kRows; ++i) labels[i] = static_cast<int64_t>(1000 + 7 * i);

  const HnswParams params{16, 64, 64};
  VectorIndex one_by_one(kDim, params);
  for (size_t i = 0; i < kRows; ++i) ASSERT_TRUE(one_by_one.Upsert(labels[i], &rows[i * kDim]));
  VectorIndex batched(kDim, params);
  ASSERT_TRUE(batched.UpsertBatch(labels, rows.data(), 4));

  EXPECT_EQ(batched.live_count(), kRows);
  EXPECT_GT(batched.index_bytes(), kRows * kDim * sizeof(float));
  std::vector<size_t> queries;
  for (size_t q = 0; q < kRows; q += 30) {
    queries.push_back(q);
    EXPECT_EQ(Labels(batched.SearchExact(&rows[q * kDim], 10)),
              Labels(one_by_one.SearchExact(&rows[q * kDim], 10)));
    const auto top = batched.SearchHnsw(&rows[q * kDim], 1);
    ASSERT_EQ(top.size(), 1u);
    EXPECT_EQ(top[0].second, labels[q]);
  }
  // Parallel inserts build as good a graph as serial ones (same ef).
  EXPECT_GE(Recall(batched, rows, queries), Recall(one_by_one, rows, queries) - 0.05);
}

TEST(VectorIndex, UpsertBatchLastRowWinsAndUpdatesExisting) {
  std::mt19937 rng(3);
  const auto rows = Rows(5, kDim, rng);
  VectorIndex index(kDim, HnswParams{});
  ASSERT_TRUE(index.Upsert(9, &rows[4 * kDim]));
  index.Remove(9);
  EXPECT_EQ(index.live_count(), 0u);

  const std::vector<int64_t> labels{1, 2, 1, 9};
  ASSERT_TRUE(index.UpsertBatch(labels, rows.data(), 2));
  EXPECT_EQ(index.live_count(), 3u);  // 1, 2 and the removed 9, back
  auto top = index.SearchExact(&rows[2 * kDim], 1);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].second, 1);
  EXPECT_NEAR(top[0].first, 1.0f, 1e-5);
  top = index.SearchExact(&rows[3 * kDim], 1);
  EXPECT_EQ(top[0].second, 9);
  EXPECT_NEAR(top[0].first, 1.0f, 1e-5);

  ASSERT_TRUE(index.UpsertBatch({}, nullptr, 4));
  EXPECT_EQ(index.live_count(), 3u);
}

TEST(VectorIndex, UpsertBatchGrowsPastInitialCapacity) {
  std::mt19937 rng(5);
  constexpr size_t kRows = 1500;  // > the initial 1,024 slots
  const auto rows = Rows(kRows, kDim, rng);
  std::vector<int64_t> labels(kRows);
  for (size_t i = 0; i < kRows; ++i) labels[i] = static_cast<int64_t>(i);
  VectorIndex index(kDim, HnswParams{8, 40, 64});
  const size_t half = kRows / 2;
  ASSERT_TRUE(index.UpsertBatch(std::span(labels).first(half), rows.data(), 3));
  ASSERT_TRUE(index.UpsertBatch(std::span(labels).subspan(half), &rows[half * kDim], 3));
  EXPECT_EQ(index.live_count(), kRows);
  ASSERT_TRUE(index.Upsert(static_cast<int64_t>(kRows), rows.data()));
  EXPECT_EQ(index.live_count(), kRows + 1);
}

TEST(VectorIndex, ExactTopKIsThePrefixOfTheFullRanking) {
  std::mt19937 rng(13);
  constexpr size_t kRows = 500;
  const auto rows = Rows(kRows, kDim, rng);
  VectorIndex index(kDim, HnswParams{16, 40, 64});
  for (size_t i = 0; i < kRows; ++i) {
    ASSERT_TRUE(index.Upsert(static_cast<int64_t>(i), &rows[i * kDim]));
  }
  for (size_t i = 0; i < kRows; i += 5) index.Remove(static_cast<int64_t>(i));
  const auto q = RandomUnit(kDim, rng);
  const auto all = index.SearchExact(q.data(), SIZE_MAX);
  ASSERT_EQ(all.size(), kRows - kRows / 5);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_GE(all[i - 1].first, all[i].first);
  for (size_t k : {size_t{0}, size_t{1}, size_t{10}, all.size() - 1, all.size(), all.size() + 1}) {
    const auto top = index.SearchExact(q.data(), k);
    ASSERT_EQ(top.size(), std::min(k, all.size())) << "k=" << k;
    for (size_t i = 0; i < top.size(); ++i) EXPECT_EQ(top[i], all[i]) << "k=" << k;
  }
  for (const auto& hit : all) {
    EXPECT_NEAR(hit.first,
                DotProductReference(q.data(), &rows[static_cast<size_t>(hit.second) * kDim], kDim),
                1e-5);
  }
}

TEST(VectorIndex, BatchBuiltSnapshotLoadsWithEfSearch) {
  TempDir dir("vector-index");
  std::mt19937 rng(17);
  constexpr size_t kRows = 1200;
  const auto rows = Rows(kRows, kDim, rng);
  std::vector<int64_t> labels(kRows);
  for (size_t i = 0; i < kRows; ++i) labels[i] = static_cast<int64_t>(i);
  VectorIndex index(kDim, HnswParams{16, 40, 50});
  ASSERT_TRUE(index.UpsertBatch(labels, rows.data(), 2));
  index.set_ef_search(300);
  EXPECT_EQ(index.ef_search(), 300u);
  ASSERT_TRUE(index.Save(dir.path(), 42));

  int64_t covered = 0;
  auto loaded = VectorIndex::Load(dir.path(), kDim, HnswParams{16, 40, 120}, &covered);
  ASSERT_TRUE(loaded) << loaded.error().ToString();
  EXPECT_EQ(covered, 42);
  EXPECT_EQ((*loaded)->live_count(), kRows);
  EXPECT_EQ((*loaded)->ef_search(), 120u);
  EXPECT_EQ((*loaded)->index_bytes(), index.index_bytes());
  (*loaded)->set_ef_search(300);
  for (size_t i = 0; i < kRows; i += 97) {
    EXPECT_EQ((*loaded)->SearchHnsw(&rows[i * kDim], 10), index.SearchHnsw(&rows[i * kDim], 10));
  }
}

}  // namespace
}  // namespace embedstream::store::internal

#pragma once
// VectorIndex: an hnswlib HNSW graph over unit vectors (inner product), keyed
// by the SQLite rowid of each message, plus an exact brute-force scan over the
// same stored vectors, and a checksummed snapshot on disk.
//
// Owns the hnswlib index and its space. Thread-safe: mutations (Upsert,
// UpsertBatch, Remove, set_ef_search) take an exclusive lock; searches and Save
// take a shared lock.
//
// Distances are 1 - dot (hnswlib's InnerProductSpace convention, so snapshots
// written by either are interchangeable); the dot product is ours, compiled for
// AVX-512, AVX2 and baseline x86-64 and picked at load time from the CPU.
//
// Snapshot = two files in the store dir: index.hnsw (hnswlib's own format) and
// index.meta (text: dim, covered change sequence, element count, byte size,
// FNV-1a 64 of index.hnsw). Load refuses a snapshot whose meta does not match
// the bytes, so a torn or corrupt file is never handed to hnswlib.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <shared_mutex>
#include <span>
#include <utility>
#include <vector>

#include "core/result.h"

namespace hnswlib {
template <typename T>
class HierarchicalNSW;
}  // namespace hnswlib

namespace embedstream::store::internal {

class DotProductSpace;

// Inner product of n floats: the plain loop (reference) and the fast path used
// by the index (multiversioned SIMD, within ~1e-6 of the reference on unit
// vectors; its AVX-512, AVX2 and baseline clones may differ in the last bits).
float DotProductReference(const float* a, const float* b, size_t n);
float DotProduct(const float* a, const float* b, size_t n);

struct HnswParams {
  size_t m = 16;
  size_t ef_construction = 200;
  size_t ef_search = 64;
};

// (score, label); score = inner product, higher is closer.
using ScoredLabel = std::pair<float, int64_t>;

class VectorIndex {
 public:
  VectorIndex(size_t dim, const HnswParams& params);
  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  // Loads dir/index.{hnsw,meta}; on success sets *covered_seq to the change
  // sequence the snapshot covers. not_found when absent, corrupt when invalid.
  static Result<std::unique_ptr<VectorIndex>> Load(const std::filesystem::path& dir, size_t dim,
                                                   const HnswParams& params, int64_t* covered_seq);
  // Writes the snapshot atomically (tmp files, fsync, rename, fsync dir).
  Status Save(const std::filesystem::path& dir, int64_t covered_seq) const;

  // Adds or replaces the vector for label (v has dim floats, unit length).
  Status Upsert(int64_t label, const float* v);
  // Upsert of labels.size() rows (vectors: row i = vectors + i * dim), new
  // labels inserted by up to `threads` threads (the caller's among them). Same
  // end state as calling Upsert row by row (a label given twice keeps its last
  // row; on error some rows may be in), except that the graph's shape depends
  // on thread timing. Searches wait for the whole batch.
  Status UpsertBatch(std::span<const int64_t> labels, const float* vectors, int threads);
  // Hides label from searches; a no-op when it is absent or already hidden.
  void Remove(int64_t label);

  size_t live_count() const;
  // Bytes hnswlib holds for the current elements: vectors, labels and links of
  // every level (not spare capacity, the label map or visited lists).
  size_t index_bytes() const;
  // Beam width for later SearchHnsw calls (recall vs latency).
  void set_ef_search(size_t ef);
  size_t ef_search() const;
  // Approximate top-k via HNSW (ef = max(ef_search, k)).
  std::vector<ScoredLabel> SearchHnsw(const float* q, size_t k) const;
  // Exact top-k by scanning every live vector; k = SIZE_MAX ranks them all.
  std::vector<ScoredLabel> SearchExact(const float* q, size_t k) const;

 private:
  VectorIndex(size_t dim, const HnswParams& params, bool empty);
  size_t dim_;
  HnswParams params_;
  std::unique_ptr<DotProductSpace> space_;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> hnsw_;
  mutable std::shared_mutex mu_;
};

}  // namespace embedstream::store::internal

#pragma once
// VectorIndex: an hnswlib HNSW graph over unit vectors (inner product), keyed
// by the SQLite rowid of each message, plus an exact brute-force scan over the
// same stored vectors, and a checksummed snapshot on disk.
//
// Owns the hnswlib index and its space. Thread-safe: mutations (Upsert,
// Remove) take an exclusive lock; searches and Save take a shared lock.
//
// Snapshot = two files in the store dir: index.hnsw (hnswlib's own format) and
// index.meta (text: dim, covered change sequence, element count, byte size,
// FNV-1a 64 of index.hnsw). Load refuses a snapshot whose meta does not match
// the bytes, so a torn or corrupt file is never handed to hnswlib.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <shared_mutex>
#include <utility>
#include <vector>

#include "core/result.h"

namespace hnswlib {
template <typename T>
class HierarchicalNSW;
class InnerProductSpace;
}  // namespace hnswlib

namespace embedstream::store::internal {

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
  // Hides label from searches; a no-op when it is absent or already hidden.
  void Remove(int64_t label);

  size_t live_count() const;
  // Approximate top-k via HNSW (ef = max(ef_search, k)).
  std::vector<ScoredLabel> SearchHnsw(const float* q, size_t k) const;
  // Exact top-k by scanning every live vector; k = SIZE_MAX ranks them all.
  std::vector<ScoredLabel> SearchExact(const float* q, size_t k) const;

 private:
  VectorIndex(size_t dim, const HnswParams& params, bool empty);
  size_t dim_;
  HnswParams params_;
  std::unique_ptr<hnswlib::InnerProductSpace> space_;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> hnsw_;
  mutable std::shared_mutex mu_;
};

}  // namespace embedstream::store::internal

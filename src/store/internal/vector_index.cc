#include "store/internal/vector_index.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>

// hnswlib 0.6.2's prefetch in searchBaseLayer reads the neighbour id one past
// a full upper-level list, a few bytes past its malloc'd block (only used as
// a prefetch address; never faults in practice). ASan builds drop hnswlib's
// manual SIMD and prefetch code so they can check the rest; our distance
// function does not use it. Release keeps it: the prefetches save ~20% at 1M.
#if defined(__SANITIZE_ADDRESS__)
#define NO_MANUAL_VECTORIZATION
#endif
#include <hnswlib/hnswlib.h>

#include "core/multiversion.h"

namespace embedstream::store::internal {
namespace {

// 16 floats; GCC lowers it to one zmm, two ymm or four xmm registers per clone.
using Floatx16 = float __attribute__((vector_size(64)));

// Forced inline so each clone gets its own ISA's copy. Four accumulators of
// 16 lanes (no dependency chain on one register), then 16, then scalar.
inline __attribute__((always_inline)) float DotKernel(const float* a, const float* b, size_t n) {
  Floatx16 acc0 = {}, acc1 = {}, acc2 = {}, acc3 = {};
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    Floatx16 a0, a1, a2, a3, b0, b1, b2, b3;
    std::memcpy(&a0, a + i, sizeof(Floatx16));
    std::memcpy(&a1, a + i + 16, sizeof(Floatx16));
    std::memcpy(&a2, a + i + 32, sizeof(Floatx16));
    std::memcpy(&a3, a + i + 48, sizeof(Floatx16));
    std::memcpy(&b0, b + i, sizeof(Floatx16));
    std::memcpy(&b1, b + i + 16, sizeof(Floatx16));
    std::memcpy(&b2, b + i + 32, sizeof(Floatx16));
    std::memcpy(&b3, b + i + 48, sizeof(Floatx16));
    acc0 += a0 * b0;
    acc1 += a1 * b1;
    acc2 += a2 * b2;
    acc3 += a3 * b3;
  }
  for (; i + 16 <= n; i += 16) {
    Floatx16 a0, b0;
    std::memcpy(&a0, a + i, sizeof(Floatx16));
    std::memcpy(&b0, b + i, sizeof(Floatx16));
    acc0 += a0 * b0;
  }
  const Floatx16 acc = (acc0 + acc1) + (acc2 + acc3);
  float sum = 0.0f;
  for (int lane = 0; lane < 16; ++lane) sum += acc[lane];
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

ES_MULTIVERSION float DotDistance(const void* a, const void* b, const void* dim) {
  return 1.0f - DotKernel(static_cast<const float*>(a), static_cast<const float*>(b),
                          *static_cast<const size_t*>(dim));
}

constexpr const char* kIndexFile = "index.hnsw";
constexpr const char* kMetaFile = "index.meta";
constexpr const char* kMetaMagic = "embedstream-hnsw-v1";
constexpr size_t kInitialCapacity = 1024;

Result<uint64_t> Fnv1a64File(const std::filesystem::path& path, uint64_t* size_out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(errc::not_found, "cannot open " + path.string());
  uint64_t h = 1469598103934665603ULL;
  uint64_t size = 0;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    auto got = static_cast<size_t>(in.gcount());
    for (size_t i = 0; i < got; ++i) {
      h ^= static_cast<unsigned char>(buf[i]);
      h *= 1099511628211ULL;
    }
    size += got;
  }
  *size_out = size;
  return h;
}

Status FsyncPath(const std::filesystem::path& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return Error(errc::io_error, "open for fsync: " + path.string());
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Error(errc::io_error, "fsync: " + path.string());
  return Status::Ok();
}

}  // namespace

float DotProductReference(const float* a, const float* b, size_t n) {
  float sum = 0.0f;
  for (size_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

ES_MULTIVERSION float DotProduct(const float* a, const float* b, size_t n) {
  return DotKernel(a, b, n);
}

// hnswlib space with distance 1 - dot, like hnswlib::InnerProductSpace (the
// space is not part of hnswlib's file format), with our dispatch.
class DotProductSpace : public hnswlib::SpaceInterface<float> {
 public:
  explicit DotProductSpace(size_t dim) : dim_(dim) {}
  size_t get_data_size() override { return dim_ * sizeof(float); }
  hnswlib::DISTFUNC<float> get_dist_func() override { return &DotDistance; }
  void* get_dist_func_param() override { return &dim_; }

 private:
  size_t dim_;
};

VectorIndex::VectorIndex(size_t dim, const HnswParams& params, bool empty)
    : dim_(dim), params_(params), space_(std::make_unique<DotProductSpace>(dim)) {
  if (empty) {
    hnsw_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(space_.get(), kInitialCapacity,
                                                              params.m, params.ef_construction);
    hnsw_->setEf(params.ef_search);
  }
}

VectorIndex::VectorIndex(size_t dim, const HnswParams& params) : VectorIndex(dim, params, true) {}

VectorIndex::~VectorIndex() = default;

Result<std::unique_ptr<VectorIndex>> VectorIndex::Load(const std::filesystem::path& dir, size_t dim,
                                                       const HnswParams& params,
                                                       int64_t* covered_seq) {
  const auto meta_path = dir / kMetaFile;
  const auto index_path = dir / kIndexFile;
  std::ifstream meta(meta_path);
  if (!meta) return Error(errc::not_found, "no index snapshot");
  std::string magic;
  size_t meta_dim = 0, count = 0;
  int64_t seq = 0;
  uint64_t bytes = 0, fnv = 0;
  meta >> magic >> meta_dim >> seq >> count >> bytes >> fnv;
  if (!meta || magic != kMetaMagic) return Error(errc::corrupt, "index.meta unreadable");
  if (meta_dim != dim) {
    return Error(errc::corrupt,
                 "index.meta dim " + std::to_string(meta_dim) + " != " + std::to_string(dim));
  }
  uint64_t actual_bytes = 0;
  auto actual_fnv = Fnv1a64File(index_path, &actual_bytes);
  if (!actual_fnv) return Error(errc::corrupt, "index.hnsw missing");
  if (actual_bytes != bytes || *actual_fnv != fnv) {
    return Error(errc::corrupt, "index.hnsw does not match index.meta (size or checksum)");
  }
  std::unique_ptr<VectorIndex> out(new VectorIndex(dim, params, false));
  try {
    out->hnsw_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(
        out->space_.get(), index_path.string(), false, std::max(count * 2, kInitialCapacity));
  } catch (const std::exception& e) {
    return Error(errc::corrupt, std::string("hnswlib load: ") + e.what());
  }
  auto& h = *out->hnsw_;
  if (h.cur_element_count != count || h.data_size_ != dim * sizeof(float)) {
    return Error(errc::corrupt, "index.hnsw header does not match index.meta");
  }
  // hnswlib 0.6 leaves num_deleted_ uninitialised on load: recount it.
  h.num_deleted_ = 0;
  for (size_t i = 0; i < h.cur_element_count; ++i) {
    if (h.isMarkedDeleted(static_cast<hnswlib::tableint>(i))) ++h.num_deleted_;
  }
  h.setEf(params.ef_search);
  *covered_seq = seq;
  return out;
}

Status VectorIndex::Save(const std::filesystem::path& dir, int64_t covered_seq) const {
  const auto index_tmp = dir / (std::string(kIndexFile) + ".tmp");
  const auto meta_tmp = dir / (std::string(kMetaFile) + ".tmp");
  size_t count = 0;
  {
    std::shared_lock lock(mu_);
    count = hnsw_->cur_element_count;
    try {
      hnsw_->saveIndex(index_tmp.string());
    } catch (const std::exception& e) {
      return Error(errc::io_error, std::string("hnswlib save: ") + e.what());
    }
  }
  uint64_t bytes = 0;
  auto fnv = Fnv1a64File(index_tmp, &bytes);
  if (!fnv) return fnv.error();
  {
    std::ofstream meta(meta_tmp, std::ios::trunc);
    meta << kMetaMagic << '\n'
         << dim_ << '\n'
         << covered_seq << '\n'
         << count << '\n'
         << bytes << '\n'
         << *fnv << '\n';
    if (!meta.flush()) return Error(errc::io_error, "write " + meta_tmp.string());
  }
  if (auto s = FsyncPath(index_tmp, false); !s) return s;
  if (auto s = FsyncPath(meta_tmp, false); !s) return s;
  // A crash between the two renames leaves a new index with an old meta: the
  // checksum then fails and Open rebuilds from SQLite.
  std::error_code ec;
  std::filesystem::rename(index_tmp, dir / kIndexFile, ec);
  if (!ec) std::filesystem::rename(meta_tmp, dir / kMetaFile, ec);
  if (ec) return Error(errc::io_error, "rename snapshot: " + ec.message());
  return FsyncPath(dir, true);
}

Status VectorIndex::Upsert(int64_t label, const float* v) {
  std::unique_lock lock(mu_);
  auto& h = *hnsw_;
  const auto key = static_cast<hnswlib::labeltype>(label);
  if (h.label_lookup_.find(key) == h.label_lookup_.end() &&
      h.cur_element_count >= h.max_elements_) {
    try {
      h.resizeIndex(h.max_elements_ * 2);
    } catch (const std::exception& e) {
      return Error(errc::internal, std::string("hnswlib resize: ") + e.what());
    }
  }
  try {
    h.addPoint(v, key);
  } catch (const std::exception& e) {
    return Error(errc::internal, std::string("hnswlib add: ") + e.what());
  }
  return Status::Ok();
}

Status VectorIndex::UpsertBatch(std::span<const int64_t> labels, const float* vectors,
                                int threads) {
  std::unique_lock lock(mu_);
  auto& h = *hnsw_;
  // The last row of each label wins; existing labels are updated in place
  // (serially, hnswlib's update path), new ones inserted (in parallel).
  std::unordered_map<int64_t, size_t> last_row;
  last_row.reserve(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) last_row[labels[i]] = i;
  std::vector<size_t> inserts;
  inserts.reserve(last_row.size());
  try {
    for (size_t i = 0; i < labels.size(); ++i) {
      if (last_row[labels[i]] != i) continue;
      const auto key = static_cast<hnswlib::labeltype>(labels[i]);
      if (h.label_lookup_.find(key) == h.label_lookup_.end()) {
        inserts.push_back(i);
      } else {
        h.addPoint(vectors + i * dim_, key);
      }
    }
    const size_t needed = h.cur_element_count + inserts.size();
    if (needed > h.max_elements_) h.resizeIndex(std::max(needed, h.max_elements_ * 2));
  } catch (const std::exception& e) {
    return Error(errc::internal, std::string("hnswlib batch: ") + e.what());
  }

  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mu;
  std::string error;
  auto insert_rows = [&] {
    while (!failed.load(std::memory_order_relaxed)) {
      const size_t j = next.fetch_add(1, std::memory_order_relaxed);
      if (j >= inserts.size()) return;
      const size_t row = inserts[j];
      try {
        h.addPoint(vectors + row * dim_, static_cast<hnswlib::labeltype>(labels[row]));
      } catch (const std::exception& e) {
        std::lock_guard error_lock(error_mu);
        if (error.empty()) error = e.what();
        failed.store(true, std::memory_order_relaxed);
      }
    }
  };
  // The first element becomes the entry point: insert it before any fan-out.
  if (h.cur_element_count == 0 && !inserts.empty()) {
    next.store(1);
    try {
      h.addPoint(vectors + inserts[0] * dim_, static_cast<hnswlib::labeltype>(labels[inserts[0]]));
    } catch (const std::exception& e) {
      return Error(errc::internal, std::string("hnswlib add: ") + e.what());
    }
  }
  const size_t workers = std::min(static_cast<size_t>(std::max(threads, 1)), inserts.size());
  std::vector<std::thread> pool;
  pool.reserve(workers);
  for (size_t t = 1; t < workers; ++t) {
    try {
      pool.emplace_back(insert_rows);
    } catch (const std::system_error&) {
      break;  // fewer threads than asked: the ones running finish the batch
    }
  }
  insert_rows();
  for (auto& thread : pool) thread.join();
  if (failed.load()) return Error(errc::internal, "hnswlib add: " + error);
  return Status::Ok();
}

void VectorIndex::Remove(int64_t label) {
  std::unique_lock lock(mu_);
  auto& h = *hnsw_;
  auto it = h.label_lookup_.find(static_cast<hnswlib::labeltype>(label));
  if (it == h.label_lookup_.end() || h.isMarkedDeleted(it->second)) return;
  h.markDeletedInternal(it->second);
}

size_t VectorIndex::live_count() const {
  std::shared_lock lock(mu_);
  return hnsw_->cur_element_count - hnsw_->num_deleted_;
}

size_t VectorIndex::index_bytes() const {
  std::shared_lock lock(mu_);
  const auto& h = *hnsw_;
  size_t bytes = h.cur_element_count * h.size_data_per_element_;
  for (size_t i = 0; i < h.cur_element_count; ++i) {
    if (h.element_levels_[i] > 0) {
      bytes += h.size_links_per_element_ * static_cast<size_t>(h.element_levels_[i]);
    }
  }
  return bytes;
}

void VectorIndex::set_ef_search(size_t ef) {
  std::unique_lock lock(mu_);
  params_.ef_search = ef;
  hnsw_->setEf(ef);
}

size_t VectorIndex::ef_search() const {
  std::shared_lock lock(mu_);
  return params_.ef_search;
}

std::vector<ScoredLabel> VectorIndex::SearchHnsw(const float* q, size_t k) const {
  std::vector<ScoredLabel> out;
  std::shared_lock lock(mu_);
  auto& h = *hnsw_;
  if (k == 0 || h.cur_element_count == h.num_deleted_) return out;
  // ef_ is a plain member read by searchKnn; searches with a larger k get a
  // larger beam by asking hnswlib for max(ef, k) candidates.
  auto pq = h.searchKnn(q, k);
  out.reserve(pq.size());
  while (!pq.empty()) {
    out.emplace_back(1.0f - pq.top().first, static_cast<int64_t>(pq.top().second));
    pq.pop();
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<ScoredLabel> VectorIndex::SearchExact(const float* q, size_t k) const {
  std::vector<ScoredLabel> out;
  if (k == 0) return out;
  auto better = [](const ScoredLabel& a, const ScoredLabel& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  std::shared_lock lock(mu_);
  auto& h = *hnsw_;
  const size_t live = h.cur_element_count - h.num_deleted_;
  const bool rank_all = k >= live;
  out.reserve(rank_all ? live : k);
  // Below rank_all, out is a heap of the k best so far with the worst on top.
  for (size_t i = 0; i < h.cur_element_count; ++i) {
    const auto id = static_cast<hnswlib::tableint>(i);
    if (h.isMarkedDeleted(id)) continue;
    const auto* v = reinterpret_cast<const float*>(h.getDataByInternalId(id));
    const ScoredLabel hit{DotProduct(q, v, dim_), static_cast<int64_t>(h.getExternalLabel(id))};
    if (rank_all || out.size() < k) {
      out.push_back(hit);
      if (!rank_all && out.size() == k) std::make_heap(out.begin(), out.end(), better);
    } else if (better(hit, out.front())) {
      std::pop_heap(out.begin(), out.end(), better);
      out.back() = hit;
      std::push_heap(out.begin(), out.end(), better);
    }
  }
  std::sort(out.begin(), out.end(), better);
  return out;
}

}  // namespace embedstream::store::internal

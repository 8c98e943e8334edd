#include "store/internal/vector_index.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>
#include <string>

#include <hnswlib/hnswlib.h>

namespace embedstream::store::internal {
namespace {

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

VectorIndex::VectorIndex(size_t dim, const HnswParams& params, bool empty)
    : dim_(dim), params_(params), space_(std::make_unique<hnswlib::InnerProductSpace>(dim)) {
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
  std::vector<ScoredLabel> all;
  std::shared_lock lock(mu_);
  auto& h = *hnsw_;
  all.reserve(h.cur_element_count - h.num_deleted_);
  for (size_t i = 0; i < h.cur_element_count; ++i) {
    const auto id = static_cast<hnswlib::tableint>(i);
    if (h.isMarkedDeleted(id)) continue;
    const auto* v = reinterpret_cast<const float*>(h.getDataByInternalId(id));
    float dot = 0.0f;
    for (size_t d = 0; d < dim_; ++d) dot += q[d] * v[d];
    all.emplace_back(dot, static_cast<int64_t>(h.getExternalLabel(id)));
  }
  auto better = [](const ScoredLabel& a, const ScoredLabel& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  if (k < all.size()) {
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(), better);
    all.resize(k);
  } else {
    std::sort(all.begin(), all.end(), better);
  }
  return all;
}

}  // namespace embedstream::store::internal

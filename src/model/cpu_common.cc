#include "model/cpu_common.h"

#include <omp.h>

namespace embedstream::model {

std::array<GemmShape, kNumOps> LayerShapes(const ModelConfig& config) {
  const int64_t H = config.hidden_size;
  const int64_t F = config.intermediate_size;
  std::array<GemmShape, kNumOps> s;
  s[kQkv] = {H, 3 * H};
  s[kAttnOut] = {H, H};
  s[kFfnIn] = {H, F};
  s[kFfnOut] = {F, H};
  return s;
}

const dnnl::matmul& MatmulCache::Get(Op op, int64_t rows) {
  const auto key = std::make_pair(static_cast<int>(op), rows);
  auto it = primitives_.find(key);
  if (it != primitives_.end()) return it->second;
  auto pd = make_(op, rows);
  const size_t scratch = pd.scratchpad_desc().get_size();
  if (scratch > scratchpad_.size()) scratchpad_.Resize(scratch);
  return primitives_.emplace(key, dnnl::matmul(pd)).first->second;
}

dnnl::memory MatmulCache::Scratchpad() const {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  return dnnl::memory({{static_cast<int64_t>(scratchpad_.size())}, dt::u8, tag::a}, engine_,
                      const_cast<unsigned char*>(scratchpad_.data()));
}

void EmbedTokens(const BertWeights& w, const PackedBatch& batch, float* x) {
  const size_t H = w.token_type0.size();
  const auto n = static_cast<int64_t>(batch.num_sequences());
#pragma omp parallel for schedule(static) if (n > 4)
  for (int64_t si = 0; si < n; ++si) {
    const auto s = static_cast<size_t>(si);
    const auto begin = static_cast<size_t>(batch.offsets[s]);
    for (size_t p = 0; p < batch.length(s); ++p) {
      const auto id = static_cast<size_t>(batch.token_ids[begin + p]);
      const float* we = w.word_embeddings.data() + id * H;
      const float* pe = w.position_embeddings.data() + p * H;
      const float* te = w.token_type0.data();
      float* row = x + (begin + p) * H;
      for (size_t c = 0; c < H; ++c) row[c] = we[c] + pe[c] + te[c];
    }
  }
}

}  // namespace embedstream::model

#include "model/batch_planner.h"

#include <algorithm>
#include <numeric>

namespace embedstream::model {

std::vector<std::vector<size_t>> PlanBatches(const std::vector<size_t>& lengths,
                                             size_t batch_tokens_max) {
  std::vector<size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return lengths[a] > lengths[b]; });
  std::vector<std::vector<size_t>> batches;
  size_t tokens = 0;
  for (size_t i : order) {
    if (batches.empty() || tokens + lengths[i] > batch_tokens_max) {
      batches.emplace_back();
      tokens = 0;
    }
    batches.back().push_back(i);
    tokens += lengths[i];
  }
  return batches;
}

}  // namespace embedstream::model

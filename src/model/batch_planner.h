#pragma once
// PlanBatches: groups sequences into batches by a token budget. Sequences
// are sorted by length first (long ones together, so attention work per
// batch is even and no batch mixes one huge and many tiny sequences);
// each batch holds at most `batch_tokens_max` tokens, or one sequence if
// that sequence alone is longer. Pure function; thread-safe.

#include <cstddef>
#include <vector>

namespace embedstream::model {

// Returns batches of indices into `lengths`.
std::vector<std::vector<size_t>> PlanBatches(const std::vector<size_t>& lengths,
                                             size_t batch_tokens_max);

}  // namespace embedstream::model

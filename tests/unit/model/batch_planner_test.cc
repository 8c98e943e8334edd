#include "model/batch_planner.h"

#include <algorithm>

#include <gtest/gtest.h>

namespace embedstream::model {
namespace {

TEST(PlanBatches, RespectsBudgetAndCoversEveryIndexOnce) {
  const std::vector<size_t> lengths = {10, 256, 3, 40, 40, 7, 300, 1, 128, 128};
  const size_t budget = 300;
  auto batches = PlanBatches(lengths, budget);
  std::vector<size_t> seen;
  for (const auto& b : batches) {
    size_t tokens = 0;
    for (size_t i : b) tokens += lengths[i];
    EXPECT_TRUE(tokens <= budget || b.size() == 1);
    seen.insert(seen.end(), b.begin(), b.end());
  }
  std::sort(seen.begin(), seen.end());
  for (size_t i = 0; i < lengths.size(); ++i) EXPECT_EQ(seen[i], i);
}

TEST(PlanBatches, LongestFirstAndOversizeAlone) {
  auto batches = PlanBatches({5, 500, 6}, 100);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0], std::vector<size_t>{1});
  EXPECT_EQ(batches[1], (std::vector<size_t>{2, 0}));
  EXPECT_TRUE(PlanBatches({}, 10).empty());
}

}  // namespace
}  // namespace embedstream::model

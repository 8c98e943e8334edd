#include "text/added_tokens.h"

#include <gtest/gtest.h>

namespace embedstream::text {
namespace {

TEST(AddedTokenMatcher, FindsLeftmostThenLongest) {
  const AddedTokenMatcher m({{"[MASK]", 103}, {"[MASK]X", 7}, {"[CLS]", 101}});
  AddedTokenMatch match;
  ASSERT_TRUE(m.FindNext("a [CLS] b [MASK]X", 0, match));
  EXPECT_EQ(match.begin, 2u);
  EXPECT_EQ(match.end, 7u);
  EXPECT_EQ(match.id, 101);
  ASSERT_TRUE(m.FindNext("a [CLS] b [MASK]X", match.end, match));
  EXPECT_EQ(match.begin, 10u);
  EXPECT_EQ(match.id, 7);
  EXPECT_FALSE(m.FindNext("a [CLS] b [MASK]X", match.end, match));
}

TEST(AddedTokenMatcher, IsCaseAndByteExact) {
  const AddedTokenMatcher m({{"[MASK]", 103}});
  AddedTokenMatch match;
  EXPECT_FALSE(m.FindNext("[mask] [MASK [ MASK ]", 0, match));
  ASSERT_TRUE(m.FindNext("[[MASK]]", 0, match));
  EXPECT_EQ(match.begin, 1u);
}

TEST(AddedTokenMatcher, DifferentFirstBytes) {
  const AddedTokenMatcher m({{"<s>", 0}, {"[SEP]", 2}, {"", 9}});
  AddedTokenMatch match;
  ASSERT_TRUE(m.FindNext("x[SEP]<s>", 0, match));
  EXPECT_EQ(match.id, 2);
  ASSERT_TRUE(m.FindNext("x[SEP]<s>", match.end, match));
  EXPECT_EQ(match.id, 0);
  EXPECT_EQ(m.tokens().size(), 2u);  // the empty one is ignored
}

TEST(AddedTokenMatcher, EmptyMatcherFindsNothing) {
  const AddedTokenMatcher m;
  AddedTokenMatch match;
  EXPECT_FALSE(m.FindNext("[CLS]", 0, match));
}

}  // namespace
}  // namespace embedstream::text

#include "pipeline/offset_tracker.h"

#include <gtest/gtest.h>

namespace embedstream::pipeline {
namespace {

TEST(OffsetTracker, CommitsOnlyTheAcknowledgedPrefix) {
  OffsetTracker t;
  for (int64_t o = 10; o < 15; ++o) t.Track("in", 0, o);
  EXPECT_EQ(t.inflight(), 5u);
  EXPECT_TRUE(t.Ack("in", 0, 12));
  EXPECT_TRUE(t.TakeCommittable().empty());  // 10, 11 still pending
  EXPECT_TRUE(t.Ack("in", 0, 10));
  auto c = t.TakeCommittable();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].next_offset, 11);
  EXPECT_TRUE(t.Ack("in", 0, 11));
  c = t.TakeCommittable();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].next_offset, 13);  // 12 was already acknowledged
  EXPECT_EQ(t.inflight(), 2u);
  EXPECT_TRUE(t.TakeCommittable().empty());
}

TEST(OffsetTracker, PartitionsAreIndependent) {
  OffsetTracker t;
  t.Track("in", 0, 5);
  t.Track("in", 1, 7);
  t.Track("other", 0, 1);
  EXPECT_TRUE(t.Ack("in", 1, 7));
  auto c = t.TakeCommittable();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].topic, "in");
  EXPECT_EQ(c[0].partition, 1);
  EXPECT_EQ(c[0].next_offset, 8);
}

TEST(OffsetTracker, UnknownAndDuplicateAcksAreRejected) {
  OffsetTracker t;
  t.Track("in", 0, 1);
  EXPECT_FALSE(t.Ack("in", 0, 2));
  EXPECT_FALSE(t.Ack("in", 3, 1));
  EXPECT_TRUE(t.Ack("in", 0, 1));
  EXPECT_FALSE(t.Ack("in", 0, 1));
}

TEST(OffsetTracker, DropForgetsARevokedPartition) {
  OffsetTracker t;
  t.Track("in", 0, 1);
  t.Track("in", 0, 2);
  t.Track("in", 1, 1);
  EXPECT_TRUE(t.Ack("in", 0, 2));
  t.Drop("in", 0);
  EXPECT_EQ(t.inflight(), 1u);
  EXPECT_FALSE(t.Ack("in", 0, 1));
  EXPECT_TRUE(t.TakeCommittable().empty());
}

}  // namespace
}  // namespace embedstream::pipeline

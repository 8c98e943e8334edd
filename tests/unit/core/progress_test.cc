#include "core/progress.h"

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

namespace embedstream {
namespace {

TEST(Progress, FormatsCountsPercentRateAndEta) {
  EXPECT_EQ(Progress::Format("embed", 12345, 100000, "records", 10.0, false),
            "embed: 12,345/100,000 records (12.3%)  1,235/s  ETA 1m11s");
  EXPECT_EQ(Progress::Format("gen", 500, 0, "events", 2.0, false), "gen: 500 events  250/s");
  EXPECT_EQ(Progress::Format("gen", 1000, 1000, "events", 4.0, true),
            "gen: 1,000/1,000 events (100.0%)  250/s  in 4s");
  EXPECT_EQ(Progress::Format("x", 1, 10000, "rows", 1.0, false),
            "x: 1/10,000 rows (0.0%)  1/s  ETA 2h46m");
  EXPECT_EQ(Progress::Format("x", 0, 10, "rows", 0.0, false), "x: 0/10 rows (0.0%)  0/s");
}

TEST(Progress, QuietWhenDisabledAndOneFinalLineWhenForcedIntoAFile) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Progress off({.label = "off", .total = 3, .out = f, .enabled = 0});
    off.Add(3);
    off.Finish();
  }
  EXPECT_EQ(std::ftell(f), 0);
  {
    Progress on({.label = "on",
                 .total = 4,
                 .unit = "rows",
                 .interval = std::chrono::hours(1),
                 .out = f,
                 .enabled = 1});
    on.Add(1);  // the first update draws at once, later ones wait for the interval
    on.Add(3);
    on.Finish();
    on.Finish();  // once
  }
  std::rewind(f);
  char buf[512] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  const std::string text(buf, n);
  EXPECT_EQ(text.rfind("on: 1/4 rows (25.0%)", 0), 0u) << text;
  EXPECT_NE(text.find("\non: 4/4 rows (100.0%)"), std::string::npos) << text;
  EXPECT_EQ(text.find("\x1b"), std::string::npos) << "no terminal codes into a file";
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  EXPECT_EQ(lines, 2u) << text;
}

}  // namespace
}  // namespace embedstream

#include "core/file_util.h"

#include <fstream>

#include <gtest/gtest.h>

#include "test_util.h"

namespace embedstream {
namespace {

TEST(FileUtil, MissingFileIsNotFound) {
  auto r = ReadFile("/nonexistent/embedstream/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::not_found);
  auto m = MappedFile::Open("/nonexistent/embedstream/x");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, errc::not_found);
}

TEST(FileUtil, ReadsAndMapsContent) {
  auto dir = testing::MakeTempDir("file");
  const auto path = dir / "f.bin";
  { std::ofstream(path, std::ios::binary) << std::string("abc\0def", 7); }
  auto r = ReadFile(path);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, std::string("abc\0def", 7));
  auto m = MappedFile::Open(path);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->size(), 7u);
  EXPECT_EQ(m->data()[4], 'd');
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace embedstream

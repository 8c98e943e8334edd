#include "model/safetensors.h"

#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "test_util.h"

namespace embedstream::model {
namespace {

class SafeTensorsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = embedstream::testing::MakeTempDir("st"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path Write(const std::string& header, const std::string& data,
                              int64_t header_len_override = -1) {
    const auto path = dir_ / "m.safetensors";
    std::ofstream f(path, std::ios::binary);
    uint64_t n =
        header_len_override >= 0 ? static_cast<uint64_t>(header_len_override) : header.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << header << data;
    return path;
  }

  std::filesystem::path dir_;
};

std::string Floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

TEST_F(SafeTensorsTest, ReadsF32AndConvertsBF16AndF16) {
  // a: F32 [2,2]; b: BF16 [2] = {1.0, -2.0}; c: F16 [1] = {0.5}
  std::string data = Floats({1, 2, 3, 4});
  const uint16_t bf[2] = {0x3F80, 0xC000};
  data.append(reinterpret_cast<const char*>(bf), 4);
  const uint16_t h = 0x3800;
  data.append(reinterpret_cast<const char*>(&h), 2);
  auto path = Write(
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[16,20]},"c":{"dtype":"F16","shape":[1],"data_offsets":[20,22]}})",
      data);
  auto st = SafeTensorsFile::Open(path);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  auto a = st->ReadF32("a", {2, 2});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)[3], 4.0f);
  auto b = st->ReadF32("b", {2});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)[0], 1.0f);
  EXPECT_EQ((*b)[1], -2.0f);
  auto c = st->ReadF32("c", {1});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)[0], 0.5f);
}

TEST_F(SafeTensorsTest, WrongShapeIsAClearError) {
  auto path =
      Write(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})", Floats({1, 2, 3, 4}));
  auto st = SafeTensorsFile::Open(path);
  ASSERT_TRUE(st.ok());
  auto a = st->ReadF32("a", {4, 1});
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, errc::corrupt);
  EXPECT_NE(a.error().message.find("[2, 2]"), std::string::npos) << a.error().message;
  auto missing = st->ReadF32("zzz", {1});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, errc::not_found);
}

TEST_F(SafeTensorsTest, CorruptFilesAreRejected) {
  struct Case {
    const char* what;
    std::string header;
    std::string data;
    int64_t len_override;
  } cases[] = {
      {"truncated data", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
       Floats({1, 2}), -1},
      {"header length past end", R"({})", "", 1 << 20},
      {"not json", "{not json", "", -1},
      {"size mismatch", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})",
       Floats({1, 2, 3, 4}), -1},
      {"unknown dtype", R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", "x", -1},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       Floats({1, 2, 3}), -1},
      {"negative dim", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", Floats({1}),
       -1},
      {"missing offsets", R"({"a":{"dtype":"F32","shape":[1]}})", Floats({1}), -1},
      // Found with tests/fuzz/fuzz_safetensors' invariants: dimensions over
      // INT64_MAX wrapped to -1 (two multiply to 1, so [-1, -1] passed as 4
      // bytes of F32), and [2^40, 2^40] overflowed int64 before the check.
      {"dims over INT64_MAX",
       R"({"a":{"dtype":"F32","shape":[18446744073709551615,18446744073709551615],"data_offsets":[0,4]}})",
       Floats({1}), -1},
      {"dims overflow int64",
       R"({"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}})",
       Floats({1}), -1},
      {"float dim", R"({"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", Floats({1}), -1},
  };
  for (const auto& c : cases) {
    auto path = Write(c.header, c.data, c.len_override);
    auto st = SafeTensorsFile::Open(path);
    EXPECT_FALSE(st.ok()) << c.what;
    if (!st.ok()) {
      EXPECT_EQ(st.error().code, errc::corrupt) << c.what;
    }
  }
  std::ofstream(dir_ / "tiny.safetensors") << "abc";
  auto tiny = SafeTensorsFile::Open(dir_ / "tiny.safetensors");
  ASSERT_FALSE(tiny.ok());
  EXPECT_EQ(tiny.error().code, errc::corrupt);
}

TEST_F(SafeTensorsTest, FromBytesParsesMemoryAndPointsIntoIt) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const uint64_t n = header.size();
  std::string image(reinterpret_cast<const char*>(&n), 8);
  image += header + Floats({1.5f, -2});
  const auto* bytes = reinterpret_cast<const unsigned char*>(image.data());
  auto st = SafeTensorsFile::FromBytes({bytes, image.size()}, "mem");
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_EQ(st->path(), "mem");
  auto view = st->Get("a");
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->data, bytes + 8 + header.size());
  auto a = st->ReadF32("a", {2});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)[1], -2.0f);
  auto missing = st->Get("b");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("mem: "), std::string::npos);
  auto short_image = SafeTensorsFile::FromBytes({bytes, 7}, "mem");
  ASSERT_FALSE(short_image.ok());
  EXPECT_EQ(short_image.error().message.rfind("mem: ", 0), 0u);
}

// Found by tests/fuzz/fuzz_safetensors (UBSan, on its seeds): reading an
// empty F32 tensor passed a null pointer to memcpy.
TEST_F(SafeTensorsTest, EmptyTensorsRead) {
  auto path = Write(R"({"e":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]}})", "");
  auto st = SafeTensorsFile::Open(path);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  auto e = st->ReadF32("e", {0, 5});
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->empty());
}

}  // namespace
}  // namespace embedstream::model

// .safetensors images: model::SafeTensorsFile::FromBytes (src/model/
// safetensors.h), then every tensor through Get and, for float tensors of up
// to 64 Ki elements, ReadF32 with its own shape. Invariants: errors are
// corrupt (or unsupported for a dtype); every view lies inside the input, has
// non-negative dimensions and nbytes == numel * dtype size.
//
// Each input is tried as it is (a whole file image) and, when it starts with
// '{', also framed: the bytes up to the first NUL are the JSON header, the
// rest the data section, and the 8-byte length is put in front here. So the
// fuzzer can grow and shrink the header without breaking its length prefix.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "model/safetensors.h"

using namespace embedstream;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  return 0;
}

namespace {

void CheckImage(const uint8_t* data, size_t size) {
  auto file = model::SafeTensorsFile::FromBytes(std::span<const unsigned char>(data, size), "fuzz");
  if (!file) {
    FUZZ_CHECK(file.error().code == errc::corrupt);
    FUZZ_CHECK(!file.error().message.empty());
    return;
  }
  for (const std::string& name : file->Names()) {
    FUZZ_CHECK(file->Has(name));
    auto view = file->Get(name);
    FUZZ_CHECK(view.ok());
    for (int64_t d : view->shape) FUZZ_CHECK(d >= 0);
    const int64_t numel = view->numel();
    FUZZ_CHECK(numel >= 0);
    FUZZ_CHECK(view->nbytes == static_cast<size_t>(numel) * model::DTypeSize(view->dtype));
    FUZZ_CHECK(view->data >= data + 8 && view->data + view->nbytes <= data + size);
    const bool is_float = view->dtype == model::DType::kF32 || view->dtype == model::DType::kF16 ||
                          view->dtype == model::DType::kBF16 || view->dtype == model::DType::kF64;
    if (numel > (int64_t{1} << 16)) continue;
    auto values = file->ReadF32(name, view->shape);
    if (is_float) {
      FUZZ_CHECK(values.ok() && values->size() == static_cast<size_t>(numel));
    } else {
      FUZZ_CHECK(!values.ok() && values.error().code == errc::unsupported);
    }
    auto wrong = file->ReadF32(name, {numel + 1});
    FUZZ_CHECK(!wrong.ok());
  }
  const std::string absent = "\x01no such tensor";
  if (!file->Has(absent)) FUZZ_CHECK(file->Get(absent).error().code == errc::not_found);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckImage(data, size);
  if (size > 0 && data[0] == '{') {
    const auto* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
    const uint64_t header_len = nul ? static_cast<uint64_t>(nul - data) : size;
    std::vector<uint8_t> image(8 + size - (nul ? 1 : 0));
    std::memcpy(image.data(), &header_len, 8);  // little-endian, as the format
    std::memcpy(image.data() + 8, data, header_len);
    if (nul) std::memcpy(image.data() + 8 + header_len, nul + 1, size - header_len - 1);
    CheckImage(image.data(), image.size());
  }
  return 0;
}

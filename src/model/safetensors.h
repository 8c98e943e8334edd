#pragma once
// SafeTensorsFile: a read-only, memory-mapped .safetensors file with every
// header entry validated (dtype known, shape product matches the byte range,
// ranges inside the data section, no overlaps). Immutable after Open, so
// concurrent reads are safe.
//
// FromBytes does the same on bytes already in memory (tests, the fuzz target
// tests/fuzz/fuzz_safetensors.cc); Open maps the file and calls it.

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "core/result.h"

namespace embedstream::model {

enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool };

const char* DTypeName(DType t);
size_t DTypeSize(DType t);

struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const unsigned char* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
};

class SafeTensorsFile {
 public:
  static Result<SafeTensorsFile> Open(const std::filesystem::path& path);
  // Parses and validates a whole .safetensors image in `bytes`. `where` names
  // it in error messages (and is path()). The result owns nothing: its
  // TensorViews point into `bytes`, which must outlive it and stay unchanged.
  static Result<SafeTensorsFile> FromBytes(std::span<const unsigned char> bytes, std::string where);

  bool Has(const std::string& name) const { return tensors_.count(name) != 0; }
  // Error(not_found) names the file and the tensor.
  Result<TensorView> Get(const std::string& name) const;
  // Copies a tensor into f32 (converting f16/bf16/f64) after checking its shape.
  Result<std::vector<float>> ReadF32(const std::string& name,
                                     const std::vector<int64_t>& expected_shape) const;
  std::vector<std::string> Names() const;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  MappedFile file_;  // empty for FromBytes
  std::map<std::string, TensorView> tensors_;
};

}  // namespace embedstream::model

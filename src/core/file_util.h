#pragma once
// Whole-file reads and read-only memory maps with errors as values.

#include <cstddef>
#include <filesystem>
#include <string>

#include "core/result.h"

namespace embedstream {

Result<std::string> ReadFile(const std::filesystem::path& path);

// A read-only mmap of a whole file. Move-only; unmaps on destruction.
class MappedFile {
 public:
  static Result<MappedFile> Open(const std::filesystem::path& path);
  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace embedstream

#include "model/safetensors.h"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

namespace embedstream::model {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the format's own limit

Result<DType> ParseDType(const std::string& s) {
  if (s == "F32") return DType::kF32;
  if (s == "F16") return DType::kF16;
  if (s == "BF16") return DType::kBF16;
  if (s == "F64") return DType::kF64;
  if (s == "I64") return DType::kI64;
  if (s == "I32") return DType::kI32;
  if (s == "I16") return DType::kI16;
  if (s == "I8") return DType::kI8;
  if (s == "U8") return DType::kU8;
  if (s == "BOOL") return DType::kBool;
  return Error(errc::unsupported, "dtype " + s);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits = 0;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3FF;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kF64:
      return "F64";
    case DType::kI64:
      return "I64";
    case DType::kI32:
      return "I32";
    case DType::kI16:
      return "I16";
    case DType::kI8:
      return "I8";
    case DType::kU8:
      return "U8";
    case DType::kBool:
      return "BOOL";
  }
  return "?";
}

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kF64:
    case DType::kI64:
      return 8;
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16:
      return 2;
    case DType::kI8:
    case DType::kU8:
    case DType::kBool:
      return 1;
  }
  return 1;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Result<SafeTensorsFile> SafeTensorsFile::Open(const std::filesystem::path& path) {
  auto mapped = MappedFile::Open(path);
  if (!mapped) return mapped.error();
  auto f = FromBytes({mapped->data(), mapped->size()}, path.string());
  if (!f) return f.error();
  f->path_ = path;
  f->file_ = std::move(*mapped);  // the mapping moves, its address does not
  return f;
}

Result<SafeTensorsFile> SafeTensorsFile::FromBytes(std::span<const unsigned char> bytes,
                                                   std::string where_name) {
  const std::string where = where_name + ": ";
  if (bytes.size() < 8) {
    return Error(errc::corrupt, where + "file is " + std::to_string(bytes.size()) +
                                    " bytes, shorter than the 8-byte header length");
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);  // little-endian on every target we build
  if (header_len > kMaxHeaderBytes || header_len > bytes.size() - 8) {
    return Error(errc::corrupt, where + "header length " + std::to_string(header_len) +
                                    " does not fit in a file of " + std::to_string(bytes.size()) +
                                    " bytes (truncated?)");
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.data() + 8, bytes.data() + 8 + header_len);
  } catch (const std::exception& e) {
    return Error(errc::corrupt, where + "header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) return Error(errc::corrupt, where + "header is not a JSON object");

  SafeTensorsFile f;
  f.path_ = std::move(where_name);
  const unsigned char* data_start = bytes.data() + 8 + header_len;
  const uint64_t data_size = bytes.size() - 8 - header_len;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const auto& entry = it.value();
    const std::string what = where + "tensor '" + it.key() + "': ";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets")) {
      return Error(errc::corrupt, what + "entry needs dtype, shape and data_offsets");
    }
    if (!entry["dtype"].is_string() || !entry["shape"].is_array() ||
        !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2) {
      return Error(errc::corrupt, what + "malformed entry");
    }
    auto dtype = ParseDType(entry["dtype"].get<std::string>());
    if (!dtype) return Error(errc::corrupt, what + dtype.error().message);
    TensorView view;
    view.dtype = *dtype;
    int64_t numel = 1;
    constexpr int64_t kMaxElements = int64_t{1} << 40;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_integer() || (!d.is_number_unsigned() && d.get<int64_t>() < 0)) {
        return Error(errc::corrupt, what + "shape has a non-integer or negative dimension");
      }
      // As unsigned: a dimension over INT64_MAX must not wrap to a negative one.
      if (d.get<uint64_t>() > static_cast<uint64_t>(kMaxElements)) {
        return Error(errc::corrupt, what + "absurd dimension");
      }
      const auto dim = static_cast<int64_t>(d.get<uint64_t>());
      view.shape.push_back(dim);
      // Checked before multiplying: two dimensions of 2^40 overflow int64.
      if (dim != 0 && numel > kMaxElements / dim) {
        return Error(errc::corrupt, what + "absurd size");
      }
      numel *= dim;
    }
    const auto& offs = entry["data_offsets"];
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned()) {
      return Error(errc::corrupt, what + "data_offsets must be non-negative integers");
    }
    const auto begin = offs[0].get<uint64_t>();
    const auto end = offs[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      return Error(errc::corrupt, what + "data range [" + std::to_string(begin) + ", " +
                                      std::to_string(end) + ") outside the data section of " +
                                      std::to_string(data_size) + " bytes (truncated?)");
    }
    const uint64_t expected = static_cast<uint64_t>(numel) * DTypeSize(view.dtype);
    if (end - begin != expected) {
      return Error(errc::corrupt, what + "shape " + ShapeString(view.shape) + " of " +
                                      DTypeName(view.dtype) + " needs " + std::to_string(expected) +
                                      " bytes, range has " + std::to_string(end - begin));
    }
    view.data = data_start + begin;
    view.nbytes = end - begin;
    ranges.emplace_back(begin, end);
    f.tensors_.emplace(it.key(), std::move(view));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) {
      return Error(errc::corrupt, where + "tensor data ranges overlap");
    }
  }
  return f;
}

Result<TensorView> SafeTensorsFile::Get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return Error(errc::not_found, path_.string() + ": no tensor named '" + name + "'");
  }
  return it->second;
}

Result<std::vector<float>> SafeTensorsFile::ReadF32(
    const std::string& name, const std::vector<int64_t>& expected_shape) const {
  auto view = Get(name);
  if (!view) return view.error();
  if (view->shape != expected_shape) {
    return Error(errc::corrupt, path_.string() + ": tensor '" + name + "' has shape " +
                                    ShapeString(view->shape) + ", the config implies " +
                                    ShapeString(expected_shape));
  }
  const auto n = static_cast<size_t>(view->numel());
  std::vector<float> out(n);
  switch (view->dtype) {
    case DType::kF32:
      if (n != 0) std::memcpy(out.data(), view->data, n * 4);  // an empty tensor: both may be null
      break;
    case DType::kF64:
      for (size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, view->data + i * 8, 8);
        out[i] = static_cast<float>(d);
      }
      break;
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, view->data + i * 2, 2);
        out[i] = HalfToFloat(h);
      }
      break;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, view->data + i * 2, 2);
        const uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(&out[i], &bits, 4);
      }
      break;
    default:
      return Error(errc::unsupported, path_.string() + ": tensor '" + name + "' has dtype " +
                                          DTypeName(view->dtype) + ", expected a float type");
  }
  return out;
}

std::vector<std::string> SafeTensorsFile::Names() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const auto& [k, v] : tensors_) names.push_back(k);
  return names;
}

}  // namespace embedstream::model

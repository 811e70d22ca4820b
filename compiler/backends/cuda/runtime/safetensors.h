// A reader of safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length, a JSON header {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data. Host-only C++17; errors are returned as messages naming the file, never thrown.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ait {

struct SafetensorsEntry {
  std::string dtype;           // "F16", "F32", "BF16", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;          // byte offsets into the data section
  uint64_t end = 0;
};

struct SafetensorsFile {
  std::map<std::string, SafetensorsEntry> tensors;
  std::map<std::string, std::string> metadata;
  std::vector<uint8_t> data;   // the data section
};

// Reads and validates `path`. Returns an empty string on success, otherwise a message naming the file and cause.
std::string read_safetensors(const std::string& path, SafetensorsFile* out);
// Parses an in-memory file (the same checks).
std::string parse_safetensors(const uint8_t* bytes, size_t size, const std::string& origin, SafetensorsFile* out);

// Bytes per element of a safetensors dtype name, or 0 when unknown.
size_t safetensors_dtype_bytes(const std::string& dtype);

// IEEE binary32 -> binary16, round to nearest even (host).
uint16_t float_to_half_bits(float value);
float half_bits_to_float(uint16_t bits);

}  // namespace ait

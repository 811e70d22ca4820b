// Host-only tool for tests: reads a safetensors file with the runtime's reader and prints one JSON object
// {"ok":true,"tensors":{name:{"dtype","shape","values"}},"metadata":{..}} or {"ok":false,"error":"..."}.
//   g++ -std=c++17 -O1 -Icompiler/backends/cuda/runtime compiler/backends/cuda/runtime/safetensors.cc compiler/backends/cuda/tests/safetensors_dump.cc -o safetensors_dump && ./safetensors_dump FILE
#include <cstdio>
#include <cstring>
#include <string>

#include "safetensors.h"

static void print_escaped(const std::string& s) {
  std::putchar('"');
  for (char c : s) {
    if (c == '"' || c == '\\') std::printf("\\%c", c);
    else if (static_cast<unsigned char>(c) < 0x20) std::printf("\\u%04x", c);
    else std::putchar(c);
  }
  std::putchar('"');
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: safetensors_dump FILE\n");
    return 2;
  }
  ait::SafetensorsFile file;
  std::string err = ait::read_safetensors(argv[1], &file);
  if (!err.empty()) {
    std::printf("{\"ok\":false,\"error\":");
    print_escaped(err);
    std::printf("}\n");
    return 1;
  }
  std::printf("{\"ok\":true,\"tensors\":{");
  bool first = true;
  for (const auto& kv : file.tensors) {
    const ait::SafetensorsEntry& e = kv.second;
    std::printf("%s", first ? "" : ",");
    first = false;
    print_escaped(kv.first);
    std::printf(":{\"dtype\":\"%s\",\"shape\":[", e.dtype.c_str());
    for (size_t d = 0; d < e.shape.size(); ++d) std::printf("%s%lld", d ? "," : "", static_cast<long long>(e.shape[d]));
    std::printf("],\"values\":[");
    const uint8_t* p = file.data.data() + e.begin;
    const size_t bytes = ait::safetensors_dtype_bytes(e.dtype), count = (e.end - e.begin) / bytes;
    for (size_t i = 0; i < count; ++i) {
      double v = 0;
      if (e.dtype == "F16") { uint16_t h; std::memcpy(&h, p + 2 * i, 2); v = ait::half_bits_to_float(h); }
      else if (e.dtype == "F32") { float f; std::memcpy(&f, p + 4 * i, 4); v = f; }
      else if (e.dtype == "I64") { int64_t x; std::memcpy(&x, p + 8 * i, 8); v = static_cast<double>(x); }
      else if (e.dtype == "I32") { int32_t x; std::memcpy(&x, p + 4 * i, 4); v = x; }
      else if (e.dtype == "U8" || e.dtype == "BOOL") v = p[i];
      std::printf("%s%.17g", i ? "," : "", v);
    }
    std::printf("]}");
  }
  std::printf("},\"metadata\":{");
  first = true;
  for (const auto& kv : file.metadata) {
    std::printf("%s", first ? "" : ",");
    first = false;
    print_escaped(kv.first);
    std::putchar(':');
    print_escaped(kv.second);
  }
  std::printf("}}\n");
  return 0;
}

#include "safetensors.h"

#include <cstring>
#include <fstream>

namespace ait {
namespace {

// A JSON subset parser sufficient for safetensors headers: objects, arrays, strings, integers (and skipping
// floats, booleans, null). Values of interest are extracted while parsing.
class HeaderParser {
 public:
  HeaderParser(const char* text, size_t size) : p_(text), end_(text + size) {}

  std::string parse(SafetensorsFile* out) {
    skip_space();
    if (!consume('{')) return fail("header is not a JSON object");
    skip_space();
    if (consume('}')) return finish();
    while (true) {
      std::string key;
      if (!parse_string(&key)) return fail("expected a tensor name");
      skip_space();
      if (!consume(':')) return fail("expected ':' after \"" + key + "\"");
      skip_space();
      std::string err = key == "__metadata__" ? parse_metadata(out) : parse_entry(key, out);
      if (!err.empty()) return err;
      skip_space();
      if (consume(',')) { skip_space(); continue; }
      if (consume('}')) return finish();
      return fail("expected ',' or '}' after \"" + key + "\"");
    }
  }

 private:
  std::string finish() {
    skip_space();
    return p_ == end_ ? std::string() : fail("trailing characters after the header object");
  }
  std::string fail(const std::string& what) const {
    return what + " (at header byte " + std::to_string(offset_) + ")";
  }
  void advance() { ++p_; ++offset_; }
  bool consume(char c) {
    if (p_ < end_ && *p_ == c) { advance(); return true; }
    return false;
  }
  void skip_space() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) advance();
  }
  bool parse_string(std::string* out) {
    if (!consume('"')) return false;
    out->clear();
    while (p_ < end_ && *p_ != '"') {
      if (*p_ == '\\') {
        advance();
        if (p_ >= end_) return false;
        char c = *p_;
        if (c == 'u') {
          // \uXXXX: decode the BMP code point to UTF-8 (surrogate pairs are kept as two code points).
          if (end_ - p_ < 5) return false;
          unsigned code = 0;
          for (int i = 1; i <= 4; ++i) {
            char h = p_[i];
            code = code * 16 + (h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 0);
          }
          for (int i = 0; i < 4; ++i) advance();
          if (code < 0x80) out->push_back(static_cast<char>(code));
          else if (code < 0x800) { out->push_back(static_cast<char>(0xC0 | (code >> 6))); out->push_back(static_cast<char>(0x80 | (code & 0x3F))); }
          else { out->push_back(static_cast<char>(0xE0 | (code >> 12))); out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F))); out->push_back(static_cast<char>(0x80 | (code & 0x3F))); }
        } else {
          out->push_back(c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == 'b' ? '\b' : c == 'f' ? '\f' : c);
        }
        advance();
      } else {
        out->push_back(*p_);
        advance();
      }
    }
    return consume('"');
  }
  bool parse_uint(uint64_t* out) {
    if (p_ >= end_ || *p_ < '0' || *p_ > '9') return false;
    uint64_t v = 0;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
      uint64_t next = v * 10 + static_cast<uint64_t>(*p_ - '0');
      if (next / 10 != v) return false;  // overflow
      v = next;
      advance();
    }
    *out = v;
    return true;
  }
  bool parse_uint_array(std::vector<uint64_t>* out) {
    if (!consume('[')) return false;
    skip_space();
    if (consume(']')) return true;
    while (true) {
      uint64_t v;
      skip_space();
      if (!parse_uint(&v)) return false;
      out->push_back(v);
      skip_space();
      if (consume(',')) continue;
      return consume(']');
    }
  }
  std::string parse_metadata(SafetensorsFile* out) {
    if (!consume('{')) return fail("__metadata__ is not an object");
    skip_space();
    if (consume('}')) return {};
    while (true) {
      std::string key, value;
      skip_space();
      if (!parse_string(&key)) return fail("expected a metadata key");
      skip_space();
      if (!consume(':')) return fail("expected ':' in __metadata__");
      skip_space();
      if (!parse_string(&value)) return fail("metadata value of \"" + key + "\" is not a string");
      out->metadata[key] = value;
      skip_space();
      if (consume(',')) continue;
      if (consume('}')) return {};
      return fail("expected ',' or '}' in __metadata__");
    }
  }
  std::string parse_entry(const std::string& name, SafetensorsFile* out) {
    if (!consume('{')) return fail("entry of \"" + name + "\" is not an object");
    SafetensorsEntry entry;
    bool has_dtype = false, has_shape = false, has_offsets = false;
    skip_space();
    if (!consume('}')) {
      while (true) {
        std::string key;
        skip_space();
        if (!parse_string(&key)) return fail("expected a key in \"" + name + "\"");
        skip_space();
        if (!consume(':')) return fail("expected ':' in \"" + name + "\"");
        skip_space();
        if (key == "dtype") {
          if (!parse_string(&entry.dtype)) return fail("dtype of \"" + name + "\" is not a string");
          has_dtype = true;
        } else if (key == "shape") {
          std::vector<uint64_t> dims;
          if (!parse_uint_array(&dims)) return fail("shape of \"" + name + "\" is not an array of integers");
          for (uint64_t d : dims) entry.shape.push_back(static_cast<int64_t>(d));
          has_shape = true;
        } else if (key == "data_offsets") {
          std::vector<uint64_t> offsets;
          if (!parse_uint_array(&offsets) || offsets.size() != 2)
            return fail("data_offsets of \"" + name + "\" is not [begin, end]");
          entry.begin = offsets[0];
          entry.end = offsets[1];
          has_offsets = true;
        } else {
          return fail("unknown key \"" + key + "\" in \"" + name + "\"");
        }
        skip_space();
        if (consume(',')) continue;
        if (consume('}')) break;
        return fail("expected ',' or '}' in \"" + name + "\"");
      }
    }
    if (!has_dtype || !has_shape || !has_offsets)
      return fail("tensor \"" + name + "\" lacks dtype, shape or data_offsets");
    if (out->tensors.count(name)) return fail("tensor \"" + name + "\" appears twice");
    out->tensors[name] = entry;
    return {};
  }

  const char* p_;
  const char* end_;
  size_t offset_ = 0;
};

}  // namespace

size_t safetensors_dtype_bytes(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2") return 1;
  return 0;
}

std::string parse_safetensors(const uint8_t* bytes, size_t size, const std::string& origin, SafetensorsFile* out) {
  const std::string where = "safetensors file '" + origin + "': ";
  if (size < 8) return where + "shorter than the 8-byte header length";
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | bytes[i];
  if (header_bytes > size - 8) return where + "header length " + std::to_string(header_bytes) + " exceeds the file";
  *out = SafetensorsFile();
  HeaderParser parser(reinterpret_cast<const char*>(bytes + 8), static_cast<size_t>(header_bytes));
  std::string err = parser.parse(out);
  if (!err.empty()) return where + err;
  const uint64_t data_bytes = size - 8 - header_bytes;
  for (const auto& kv : out->tensors) {
    const SafetensorsEntry& e = kv.second;
    size_t element_bytes = safetensors_dtype_bytes(e.dtype);
    if (element_bytes == 0) return where + "tensor \"" + kv.first + "\" has unknown dtype " + e.dtype;
    uint64_t count = 1;
    for (int64_t d : e.shape) count *= static_cast<uint64_t>(d);
    if (e.end < e.begin || e.end > data_bytes)
      return where + "tensor \"" + kv.first + "\" has data offsets outside the data section";
    if (e.end - e.begin != count * element_bytes)
      return where + "tensor \"" + kv.first + "\" has " + std::to_string(e.end - e.begin) + " bytes, its shape needs " +
             std::to_string(count * element_bytes);
  }
  out->data.assign(bytes + 8 + header_bytes, bytes + size);
  return {};
}

std::string read_safetensors(const std::string& path, SafetensorsFile* out) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) return "safetensors file '" + path + "': cannot be opened";
  std::streamsize size = file.tellg();
  file.seekg(0);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && !file.read(reinterpret_cast<char*>(bytes.data()), size))
    return "safetensors file '" + path + "': read failed";
  return parse_safetensors(bytes.data(), bytes.size(), path, out);
}

uint16_t float_to_half_bits(float value) {
  uint32_t x;
  std::memcpy(&x, &value, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t exponent = (x >> 23) & 0xFFu;
  uint32_t mantissa = x & 0x7FFFFFu;
  if (exponent == 0xFF) return static_cast<uint16_t>(sign | 0x7C00u | (mantissa ? 0x200u : 0));  // inf / nan
  int e = static_cast<int>(exponent) - 127 + 15;
  if (e >= 0x1F) return static_cast<uint16_t>(sign | 0x7C00u);  // overflow -> inf
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);  // underflow -> signed zero
    mantissa |= 0x800000u;
    const int shift = 14 - e;
    uint32_t half_mantissa = mantissa >> shift;
    const uint32_t remainder = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (half_mantissa & 1))) ++half_mantissa;
    return static_cast<uint16_t>(sign | half_mantissa);
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mantissa >> 13);
  const uint32_t remainder = mantissa & 0x1FFFu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (half & 1))) ++half;  // may carry into the exponent: correct
  return static_cast<uint16_t>(half);
}

float half_bits_to_float(uint16_t bits) {
  const uint32_t sign = (bits & 0x8000u) << 16;
  uint32_t exponent = (bits >> 10) & 0x1Fu;
  uint32_t mantissa = bits & 0x3FFu;
  uint32_t x;
  if (exponent == 0x1F) {
    x = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent == 0) {
    if (mantissa == 0) {
      x = sign;
    } else {
      int e = -1;
      do { mantissa <<= 1; ++e; } while (!(mantissa & 0x400u));
      x = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mantissa & 0x3FFu) << 13);
    }
  } else {
    x = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

}  // namespace ait

// SPDX-License-Identifier: Apache-2.0
// tokenizer.model reading: protobuf wire format (varints, length-delimited fields) with bounds
// checks, and the darts-clone trie of precompiled_charsmap.
#include "tokenizer/sentencepiece_model.hpp"

#include <cstring>

#include "common/fail.hpp"

namespace polyinfer::inline v0::detail {

namespace {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLength = 2, kFixed32 = 5 };

/// A bounded reader over one message; offsets are reported relative to the whole file.
class ProtoReader {
 public:
  ProtoReader(std::string_view bytes, size_t base, const std::string& where)
      : bytes_(bytes), base_(base), where_(where) {}

  [[nodiscard]] bool done() const noexcept { return pos_ >= bytes_.size(); }
  [[nodiscard]] size_t offset() const noexcept { return base_ + pos_; }

  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) fail_here("truncated varint");
      const auto byte = static_cast<unsigned char>(bytes_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    fail_here("varint longer than 10 bytes");
  }

  /// Reads a field key: (field number, wire type).
  std::pair<uint32_t, uint32_t> key() {
    const uint64_t key = varint();
    if ((key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) fail_here("invalid field number");
    return {static_cast<uint32_t>(key >> 3), static_cast<uint32_t>(key & 7)};
  }

  /// A length-delimited payload and the file offset where it starts.
  std::pair<std::string_view, size_t> bytes() {
    const uint64_t length = varint();
    if (length > bytes_.size() - pos_) fail_here("length-delimited field runs past its message");
    const size_t start = pos_;
    pos_ += static_cast<size_t>(length);
    return {bytes_.substr(start, static_cast<size_t>(length)), base_ + start};
  }

  float fixed32_float() {
    if (bytes_.size() - pos_ < 4) fail_here("truncated fixed32");
    uint32_t raw = 0;
    for (int i = 3; i >= 0; --i) {
      raw = (raw << 8) | static_cast<unsigned char>(bytes_[pos_ + static_cast<size_t>(i)]);
    }
    pos_ += 4;
    float value = 0.0F;
    std::memcpy(&value, &raw, sizeof(value));
    return value;
  }

  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case kVarint:
        (void)varint();
        break;
      case kFixed64:
        advance(8);
        break;
      case kLength:
        (void)bytes();
        break;
      case kFixed32:
        advance(4);
        break;
      default:
        fail_here("unsupported wire type " + std::to_string(wire_type));
    }
  }

  void expect(uint32_t wire_type, uint32_t wanted, std::string_view field) {
    if (wire_type != wanted) {
      fail_here("field " + std::string(field) + " has wire type " + std::to_string(wire_type));
    }
  }

  [[noreturn]] void fail_here(const std::string& message) const {
    fail(ErrorCode::kFormat, where_ + "@" + std::to_string(offset()), "{}", message);
  }

 private:
  void advance(size_t count) {
    if (bytes_.size() - pos_ < count) fail_here("truncated fixed-width field");
    pos_ += count;
  }

  std::string_view bytes_;
  size_t base_;
  const std::string& where_;
  size_t pos_ = 0;
};

bool read_bool(ProtoReader& reader, uint32_t wire_type, std::string_view field) {
  reader.expect(wire_type, kVarint, field);
  return reader.varint() != 0;
}

std::string read_string(ProtoReader& reader, uint32_t wire_type, std::string_view field) {
  reader.expect(wire_type, kLength, field);
  return std::string(reader.bytes().first);
}

SentencePieceModel::Piece read_piece(std::string_view bytes, size_t base,
                                     const std::string& where) {
  ProtoReader reader(bytes, base, where);
  SentencePieceModel::Piece piece;
  while (!reader.done()) {
    const auto [field, wire] = reader.key();
    if (field == 1) {
      piece.text = read_string(reader, wire, "piece");
    } else if (field == 2) {
      reader.expect(wire, kFixed32, "score");
      piece.score = reader.fixed32_float();
    } else if (field == 3) {
      reader.expect(wire, kVarint, "type");
      const uint64_t type = reader.varint();
      if (type < 1 || type > 6) reader.fail_here("unknown piece type " + std::to_string(type));
      piece.type = static_cast<SentencePieceModel::PieceType>(type);
    } else {
      reader.skip(wire);
    }
  }
  return piece;
}

void read_trainer_spec(std::string_view bytes, size_t base, const std::string& where,
                       SentencePieceModel& model) {
  ProtoReader reader(bytes, base, where);
  while (!reader.done()) {
    const auto [field, wire] = reader.key();
    switch (field) {
      case 3: {
        reader.expect(wire, kVarint, "model_type");
        const uint64_t type = reader.varint();
        if (type < 1 || type > 4) reader.fail_here("unknown model_type " + std::to_string(type));
        model.model_type = static_cast<SentencePieceModel::ModelType>(type);
        break;
      }
      case 24:
        model.treat_whitespace_as_suffix = read_bool(reader, wire, "treat_whitespace_as_suffix");
        break;
      case 35:
        model.byte_fallback = read_bool(reader, wire, "byte_fallback");
        break;
      case 44:
        model.unk_surface = read_string(reader, wire, "unk_surface");
        break;
      case 45:
        model.unk_piece = read_string(reader, wire, "unk_piece");
        break;
      case 46:
        model.bos_piece = read_string(reader, wire, "bos_piece");
        break;
      case 47:
        model.eos_piece = read_string(reader, wire, "eos_piece");
        break;
      case 48:
        model.pad_piece = read_string(reader, wire, "pad_piece");
        break;
      default:
        reader.skip(wire);
    }
  }
}

void read_normalizer_spec(std::string_view bytes, size_t base, const std::string& where,
                          SentencePieceModel& model) {
  ProtoReader reader(bytes, base, where);
  while (!reader.done()) {
    const auto [field, wire] = reader.key();
    switch (field) {
      case 1:
        model.normalizer_name = read_string(reader, wire, "name");
        break;
      case 2:
        model.precompiled_charsmap = read_string(reader, wire, "precompiled_charsmap");
        break;
      case 3:
        model.add_dummy_prefix = read_bool(reader, wire, "add_dummy_prefix");
        break;
      case 4:
        model.remove_extra_whitespaces = read_bool(reader, wire, "remove_extra_whitespaces");
        break;
      case 5:
        model.escape_whitespaces = read_bool(reader, wire, "escape_whitespaces");
        break;
      default:
        reader.skip(wire);
    }
  }
}

// darts-clone unit accessors.
bool unit_has_leaf(uint32_t unit) noexcept {
  return ((unit >> 8) & 1) == 1;
}
uint32_t unit_value(uint32_t unit) noexcept {
  return unit & ((1U << 31) - 1);
}
uint32_t unit_label(uint32_t unit) noexcept {
  return unit & ((1U << 31) | 0xFF);
}
uint32_t unit_offset(uint32_t unit) noexcept {
  return (unit >> 10) << ((unit & (1U << 9)) >> 6);
}

}  // namespace

SentencePieceModel parse_sentencepiece_model(std::string_view bytes, const std::string& where) {
  SentencePieceModel model;
  ProtoReader reader(bytes, 0, where);
  bool has_normalizer = false;
  while (!reader.done()) {
    const size_t field_offset = reader.offset();
    const auto [field, wire] = reader.key();
    if (field == 1 || field == 2 || field == 3) {
      reader.expect(wire, kLength,
                    field == 1   ? "pieces"
                    : field == 2 ? "trainer_spec"
                                 : "normalizer_spec");
      const auto [payload, base] = reader.bytes();
      if (field == 1) {
        model.pieces.push_back(read_piece(payload, base, where));
        if (model.pieces.back().text.empty()) {
          fail(ErrorCode::kFormat, where + "@" + std::to_string(field_offset), "piece {} is empty",
               model.pieces.size() - 1);
        }
      } else if (field == 2) {
        read_trainer_spec(payload, base, where, model);
      } else {
        read_normalizer_spec(payload, base, where, model);
        has_normalizer = true;
      }
    } else {
      reader.skip(wire);
    }
  }
  if (model.pieces.empty()) fail(ErrorCode::kFormat, where, "model has no pieces");
  if (model.pieces.size() > static_cast<size_t>(INT32_MAX)) {
    fail(ErrorCode::kFormat, where, "too many pieces");
  }
  (void)has_normalizer;
  return model;
}

SentencePieceCharsMap::SentencePieceCharsMap(std::string_view blob, const std::string& where) {
  const std::string at = where + ": normalizer_spec.precompiled_charsmap";
  if (blob.size() <= 4) fail(ErrorCode::kFormat, at, "blob too short");
  uint32_t trie_size = 0;
  for (int i = 3; i >= 0; --i) {
    trie_size = (trie_size << 8) | static_cast<unsigned char>(blob[static_cast<size_t>(i)]);
  }
  if (trie_size >= blob.size() - 4) fail(ErrorCode::kFormat, at, "trie size exceeds the blob");
  if (trie_size < 1024 || (trie_size & 0x3FF) != 0) {
    fail(ErrorCode::kFormat, at, "trie size {} not a multiple of 1024", trie_size);
  }
  units_.resize(trie_size / 4);
  for (size_t i = 0; i < units_.size(); ++i) {
    uint32_t unit = 0;
    for (int b = 3; b >= 0; --b) {
      unit = (unit << 8) | static_cast<unsigned char>(blob[4 + i * 4 + static_cast<size_t>(b)]);
    }
    units_[i] = unit;
  }
  normalized_ = std::string(blob.substr(4 + trie_size));
  if (normalized_.empty() || normalized_.back() != '\0') {
    fail(ErrorCode::kFormat, at, "replacement strings are not NUL-terminated");
  }
  // darts-clone's validate(): every transition stays inside the array, values index strings.
  const size_t size = units_.size();
  if (unit_label(units_[0]) != 0 || unit_has_leaf(units_[0]) || unit_offset(units_[0]) == 0 ||
      (unit_offset(units_[0]) | 0xFF) >= size) {
    fail(ErrorCode::kFormat, at, "invalid trie root");
  }
  for (size_t i = 1; i < size; ++i) {
    if (unit_label(units_[i]) <= 0xFF) {
      if (((i ^ unit_offset(units_[i])) | 0xFF) >= size) {
        fail(ErrorCode::kFormat, at, "trie unit {} points outside the array", i);
      }
    } else if (unit_value(units_[i]) >= normalized_.size()) {
      fail(ErrorCode::kFormat, at, "trie value {} outside the replacement strings", i);
    }
  }
}

std::optional<std::pair<std::string_view, size_t>> SentencePieceCharsMap::match(
    std::string_view text) const {
  size_t node = unit_offset(units_[0]);
  size_t best_length = 0;
  uint32_t best_value = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    node ^= byte;
    if (node >= units_.size()) break;
    const uint32_t unit = units_[node];
    if (unit_label(unit) != byte) break;
    node ^= unit_offset(unit);
    if (node >= units_.size()) break;
    if (unit_has_leaf(unit)) {
      best_length = i + 1;  // later matches are longer
      best_value = unit_value(units_[node]);
    }
  }
  if (best_length == 0 || best_value >= normalized_.size()) return std::nullopt;
  return std::make_pair(std::string_view(normalized_.c_str() + best_value), best_length);
}

std::optional<std::string_view> SentencePieceCharsMap::shortest(std::string_view text) const {
  size_t node = unit_offset(units_[0]);
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == 0) break;
    node ^= byte;
    if (node >= units_.size()) break;
    const uint32_t unit = units_[node];
    if (unit_label(unit) != byte) break;
    node ^= unit_offset(unit);
    if (node >= units_.size()) break;
    if (unit_has_leaf(unit)) {
      const uint32_t value = unit_value(units_[node]);
      if (value >= normalized_.size()) return std::nullopt;
      return std::string_view(normalized_.c_str() + value);
    }
  }
  return std::nullopt;
}

}  // namespace polyinfer::inline v0::detail

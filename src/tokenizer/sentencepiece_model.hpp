// SPDX-License-Identifier: Apache-2.0
// SentencePiece ModelProto (tokenizer.model) read by hand, and its precompiled normalization map.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace polyinfer::inline v0::detail {

/// The parts of sentencepiece's ModelProto that encoding and decoding use.
struct SentencePieceModel {
  /// ModelProto.SentencePiece.Type.
  enum class PieceType : uint8_t {
    kNormal = 1,
    kUnknown = 2,
    kControl = 3,
    kUserDefined = 4,
    kUnused = 5,
    kByte = 6,
  };
  /// TrainerSpec.ModelType.
  enum class ModelType : uint8_t { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };

  struct Piece {
    std::string text;
    float score = 0.0F;
    PieceType type = PieceType::kNormal;
  };

  std::vector<Piece> pieces;
  // trainer_spec
  ModelType model_type = ModelType::kUnigram;
  bool byte_fallback = false;
  bool treat_whitespace_as_suffix = false;
  std::string unk_surface = " \xE2\x81\x87 ";
  std::string unk_piece = "<unk>";
  std::string bos_piece = "<s>";
  std::string eos_piece = "</s>";
  std::string pad_piece = "<pad>";
  // normalizer_spec
  std::string normalizer_name;
  std::string precompiled_charsmap;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

/// Parses a serialized ModelProto (protobuf wire format), checking every bound. Throws
/// Error(kFormat) naming `where`@offset on malformed input.
[[nodiscard]] SentencePieceModel parse_sentencepiece_model(std::string_view bytes,
                                                           const std::string& where);

/// sentencepiece's precompiled_charsmap: a darts-clone double-array trie from UTF-8 prefixes to
/// replacement strings (nmt_nfkc and friends). Immutable after construction.
class SentencePieceCharsMap {
 public:
  /// Validates the blob like sentencepiece's Normalizer::Init; Error(kFormat) naming `where`.
  SentencePieceCharsMap(std::string_view blob, const std::string& where);

  /// The longest rule matching a prefix of `text`: (replacement, bytes consumed); nullopt when
  /// none applies.
  [[nodiscard]] std::optional<std::pair<std::string_view, size_t>> match(
      std::string_view text) const;
  /// The replacement of the *shortest* rule matching a prefix of `text` (stopping at a NUL
  /// byte): what tokenizers' Precompiled normalizer (spm_precompiled) uses.
  [[nodiscard]] std::optional<std::string_view> shortest(std::string_view text) const;

 private:
  std::vector<uint32_t> units_;
  std::string normalized_;  // NUL-terminated replacement strings
};

}  // namespace polyinfer::inline v0::detail

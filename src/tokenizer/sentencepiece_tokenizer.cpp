// SPDX-License-Identifier: Apache-2.0
// Placeholder: tokenizer.model tokenizers are being written (this file is replaced by that task).
#include "common/fail.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace polyinfer::inline v0::detail {

std::shared_ptr<const TokenizerImpl> make_sentencepiece_tokenizer(std::string_view, std::string_view, const std::string&) {
  fail(ErrorCode::kUnsupported, "tokenizer", "tokenizer.model tokenizers are not built yet");
}

}  // namespace polyinfer::inline v0::detail

// SPDX-License-Identifier: Apache-2.0
// Placeholder: tokenizer.json tokenizers are being written (this file is replaced by that task).
#include "common/fail.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace polyinfer::inline v0::detail {

std::shared_ptr<const TokenizerImpl> make_hf_tokenizer(std::string_view, std::string_view, const std::string&) {
  fail(ErrorCode::kUnsupported, "tokenizer", "tokenizer.json tokenizers are not built yet");
}

}  // namespace polyinfer::inline v0::detail

// SPDX-License-Identifier: Apache-2.0
// Placeholder: GGUF tokenizers are being written (this file is replaced by that task).
#include "common/fail.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace polyinfer::inline v0::detail {

std::shared_ptr<const TokenizerImpl> make_gguf_tokenizer(const GgufFile&) {
  fail(ErrorCode::kUnsupported, "tokenizer", "GGUF tokenizers are not built yet");
}

}  // namespace polyinfer::inline v0::detail

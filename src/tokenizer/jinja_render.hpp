// SPDX-License-Identifier: Apache-2.0
// Renderer: walks a parsed Jinja program with the template variables and produces the text.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/jinja_parser.hpp"
#include "tokenizer/jinja_value.hpp"

namespace polyinfer::inline v0::detail {

/// Limits on one render, against hostile templates.
inline constexpr std::size_t kMaxOutputBytes = kMaxStringBytes;
inline constexpr std::uint64_t kWorkBudget = 20'000'000;  ///< nodes + elements + bytes / 16
inline constexpr int kMaxRenderDepth = 600;               ///< nested evaluations and macro calls

/// Renders `program` with the given variables; throws polyinfer::Error(kTemplate) naming the
/// template line and column (raise_exception's message is passed through unchanged).
[[nodiscard]] std::string render_program(const Program& program, Entries variables);

/// The interpreter state of one render. Builtins (filters, tests, functions) receive it to
/// charge work and call back into the interpreter.
class Renderer {
 public:
  Renderer(const Program& program, Entries variables);

  std::string render();

  /// Counts `units` of work against kWorkBudget.
  void charge(std::uint64_t units);
  /// equals() and less(), charging the elements they compare.
  bool equal(const Value& a, const Value& b);
  bool less_than(const Value& a, const Value& b);
  /// Calls a function value (global function, bound method, macro, loop.cycle).
  Value call(const Value& callee, const CallArgs& args);

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  using Frame = Entries;

  class DepthGuard {
   public:
    explicit DepthGuard(Renderer& renderer);
    ~DepthGuard() { --renderer_.depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Renderer& renderer_;
  };

  // Statements (jinja_render.cpp).
  Flow exec_body(const std::vector<NodePtr>& body);
  Flow exec(const Node& node);
  Flow exec_for(const Node& node);
  void exec_set(const Node& node);
  std::string capture(const std::vector<NodePtr>& body);
  void emit(const Value& value);
  void assign(const Target& target, const Value& value, std::uint32_t offset);
  void bind(Frame& frame, const Target& target, const Value& value);
  Value call_macro(const FunctionData& macro, const CallArgs& args);

  // Expressions (jinja_eval.cpp).
  Value eval(const Expr& expr);
  Value eval_call(const Expr& expr);
  CallArgs eval_args(const Expr& expr, std::size_t first);
  bool eval_compare(const Expr& expr);
  Value lookup(const std::string& name) const;
  void at(std::uint32_t offset) { offset_ = offset; }

  const Program& program_;
  std::vector<Frame> frames_;
  std::size_t frame_floor_ = 1;  ///< frames below this (except frame 0) are hidden (macros)
  std::string out_;
  std::uint64_t work_ = 0;
  int depth_ = 0;
  std::uint32_t offset_ = 0;             ///< template offset being evaluated, for error locations
  const Value* filter_input_ = nullptr;  ///< the body text inside {% filter %}
};

/// Binary operators with Python's semantics (jinja_eval.cpp).
[[nodiscard]] Value binary_op(BinaryOp op, const Value& left, const Value& right);
/// `needle in haystack`; adds the elements compared to `*steps`.
[[nodiscard]] bool contains(const Value& haystack, const Value& needle, std::uint64_t* steps);

/// Global functions (range, namespace, dict, raise_exception, strftime_now) and the methods
/// of str, dict and list (jinja_functions.cpp).
[[nodiscard]] bool is_global_function(std::string_view name);
[[nodiscard]] Value call_global(Renderer& renderer, const std::string& name, const CallArgs& args);
[[nodiscard]] Value call_method(Renderer& renderer, const Value& self, const std::string& name,
                                const CallArgs& args);

/// Binds call arguments to named parameters (Python's rules for positional + keyword).
/// Missing parameters are left undefined.
[[nodiscard]] std::vector<Value> bind_args(const CallArgs& args,
                                           std::initializer_list<std::string_view> params,
                                           std::string_view callee);

}  // namespace polyinfer::inline v0::detail

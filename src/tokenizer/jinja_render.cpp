// SPDX-License-Identifier: Apache-2.0
// Renderer statements: output, if, for, set, macro, with, filter blocks, scopes and limits.
#include "tokenizer/jinja_render.hpp"

#include <fmt/format.h>

#include <new>

#include "common/fail.hpp"
#include "tokenizer/jinja_lexer.hpp"

namespace polyinfer::inline v0::detail {

Renderer::DepthGuard::DepthGuard(Renderer& renderer) : renderer_(renderer) {
  if (++renderer_.depth_ > kMaxRenderDepth) {
    --renderer_.depth_;
    throw JinjaError(fmt::format("template recursion deeper than {} levels", kMaxRenderDepth));
  }
}

Renderer::Renderer(const Program& program, Entries variables) : program_(program) {
  frames_.push_back(std::move(variables));
}

std::string Renderer::render() {
  try {
    exec_body(program_.body);
  } catch (const Error&) {
    throw;
  } catch (const JinjaError& error) {
    fail(ErrorCode::kTemplate, template_location(program_.source, offset_), "{}", error.what());
  } catch (const std::bad_alloc&) {
    fail(ErrorCode::kTemplate, template_location(program_.source, offset_), "out of memory");
  } catch (const std::exception& error) {
    fail(ErrorCode::kTemplate, template_location(program_.source, offset_), "{}", error.what());
  }
  return std::move(out_);
}

void Renderer::charge(std::uint64_t units) {
  work_ += units;
  if (work_ > kWorkBudget) {
    throw JinjaError(fmt::format("template exceeded its work budget ({} steps)", kWorkBudget));
  }
}

bool Renderer::equal(const Value& a, const Value& b) {
  std::uint64_t steps = 0;
  const bool result = equals(a, b, &steps);
  charge(steps);
  return result;
}

bool Renderer::less_than(const Value& a, const Value& b) {
  std::uint64_t steps = 0;
  const bool result = less(a, b, &steps);
  charge(steps);
  return result;
}

void Renderer::emit(const Value& value) {
  const std::size_t before = out_.size();
  append_str(out_, value, kMaxOutputBytes);
  charge((out_.size() - before) / 64);
}

std::string Renderer::capture(const std::vector<NodePtr>& body) {
  std::string saved;
  saved.swap(out_);
  try {
    exec_body(body);
  } catch (...) {
    out_.swap(saved);
    throw;
  }
  out_.swap(saved);
  return saved;
}

Renderer::Flow Renderer::exec_body(const std::vector<NodePtr>& body) {
  for (const NodePtr& node : body) {
    const Flow flow = exec(*node);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Renderer::Flow Renderer::exec(const Node& node) {
  DepthGuard guard(*this);
  charge(1);
  at(node.offset);
  switch (node.kind) {
    case NodeKind::kText: {
      if (out_.size() + node.text.size() > kMaxOutputBytes) {
        throw JinjaError(fmt::format("output longer than {} bytes", kMaxOutputBytes));
      }
      out_ += node.text;
      charge(node.text.size() / 64);
      return Flow::kNormal;
    }
    case NodeKind::kOutput:
      emit(eval(*node.expr));
      return Flow::kNormal;
    case NodeKind::kIf:
      for (const Branch& branch : node.branches) {
        if (truthy(eval(*branch.condition))) return exec_body(branch.body);
      }
      return exec_body(node.else_body);
    case NodeKind::kFor:
      return exec_for(node);
    case NodeKind::kSet:
    case NodeKind::kSetBlock:
      exec_set(node);
      return Flow::kNormal;
    case NodeKind::kMacro: {
      FunctionData macro;
      macro.kind = FunctionKind::kMacro;
      macro.name = node.text;
      macro.macro = &node;
      Frame& frame = frames_.back();
      Target target;
      target.names.push_back(node.text);
      bind(frame, target, Value::function(std::move(macro)));
      return Flow::kNormal;
    }
    case NodeKind::kWith: {
      Frame frame;
      for (const Assignment& assignment : node.assignments) {
        bind(frame, assignment.target, eval(*assignment.value));
      }
      frames_.push_back(std::move(frame));
      Flow flow = Flow::kNormal;
      try {
        flow = exec_body(node.body);
      } catch (...) {
        frames_.pop_back();
        throw;
      }
      frames_.pop_back();
      return flow;
    }
    case NodeKind::kFilterBlock: {
      const Value text = Value::string(capture(node.body));
      const Value* saved = filter_input_;
      filter_input_ = &text;
      Value result;
      try {
        result = eval(*node.expr);
      } catch (...) {
        filter_input_ = saved;
        throw;
      }
      filter_input_ = saved;
      emit(result);
      return Flow::kNormal;
    }
    case NodeKind::kBreak:
      return Flow::kBreak;
    case NodeKind::kContinue:
      return Flow::kContinue;
    case NodeKind::kBody:
      return exec_body(node.body);
  }
  return Flow::kNormal;
}

void Renderer::bind(Frame& frame, const Target& target, const Value& value) {
  if (!target.is_tuple) {
    for (auto& entry : frame) {
      if (entry.first == target.names[0]) {
        entry.second = value;
        return;
      }
    }
    frame.emplace_back(target.names[0], value);
    return;
  }
  const std::vector<Value> items = iterate(value);
  if (items.size() != target.names.size()) {
    throw JinjaError(
        items.size() > target.names.size()
            ? fmt::format("too many values to unpack (expected {})", target.names.size())
            : fmt::format("not enough values to unpack (expected {}, got {})", target.names.size(),
                          items.size()));
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    Target single;
    single.names.push_back(target.names[i]);
    bind(frame, single, items[i]);
  }
}

void Renderer::assign(const Target& target, const Value& value, std::uint32_t offset) {
  if (target.attribute.empty()) {
    bind(frames_.back(), target, value);
    return;
  }
  const Value object = lookup(target.names[0]);
  at(offset);
  if (!object.is_namespace()) {
    throw JinjaError(fmt::format("cannot set attribute '{}' on '{}': it is not a namespace()",
                                 target.attribute, target.names[0]));
  }
  object.as_namespace().set(target.attribute, value);
}

void Renderer::exec_set(const Node& node) {
  if (node.kind == NodeKind::kSet) {
    const Value value = eval(*node.expr);
    assign(node.target, value, node.offset);
    return;
  }
  Value value = Value::string(capture(node.body));
  if (node.expr) {
    const Value* saved = filter_input_;
    filter_input_ = &value;
    Value filtered;
    try {
      filtered = eval(*node.expr);
    } catch (...) {
      filter_input_ = saved;
      throw;
    }
    filter_input_ = saved;
    value = std::move(filtered);
  }
  assign(node.target, value, node.offset);
}

Renderer::Flow Renderer::exec_for(const Node& node) {
  const Value iterable = eval(*node.expr);
  at(node.offset);
  std::vector<Value> items = iterate(iterable);
  charge(items.size());
  if (node.condition) {
    std::vector<Value> kept;
    for (Value& item : items) {
      Frame frame;
      bind(frame, node.target, item);
      frames_.push_back(std::move(frame));
      bool keep = false;
      try {
        keep = truthy(eval(*node.condition));
      } catch (...) {
        frames_.pop_back();
        throw;
      }
      frames_.pop_back();
      if (keep) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  // jinja2 runs the else block unless some iteration reached the end of the body (an
  // iteration left by break or continue does not count).
  bool completed_iteration = false;
  const auto count = static_cast<std::int64_t>(items.size());
  for (std::int64_t i = 0; i < count; ++i) {
    charge(64);  // the loop variables: a dozen small allocations
    const auto index = static_cast<std::size_t>(i);
    Entries loop;
    loop.reserve(12);
    loop.emplace_back("index", Value::integer(i + 1));
    loop.emplace_back("index0", Value::integer(i));
    loop.emplace_back("revindex", Value::integer(count - i));
    loop.emplace_back("revindex0", Value::integer(count - i - 1));
    loop.emplace_back("first", Value::boolean(i == 0));
    loop.emplace_back("last", Value::boolean(i == count - 1));
    loop.emplace_back("length", Value::integer(count));
    loop.emplace_back("depth", Value::integer(1));
    loop.emplace_back("depth0", Value::integer(0));
    if (i > 0) loop.emplace_back("previtem", items[index - 1]);
    if (i + 1 < count) loop.emplace_back("nextitem", items[index + 1]);
    FunctionData cycle;
    cycle.kind = FunctionKind::kLoopCycle;
    cycle.name = "cycle";
    cycle.self = Value::integer(i);
    loop.emplace_back("cycle", Value::function(std::move(cycle)));
    Frame frame;
    bind(frame, node.target, items[index]);
    frame.emplace_back("loop", Value::dict(std::move(loop)));
    frames_.push_back(std::move(frame));
    Flow flow = Flow::kNormal;
    try {
      flow = exec_body(node.body);
    } catch (...) {
      frames_.pop_back();
      throw;
    }
    frames_.pop_back();
    if (flow == Flow::kBreak) break;
    if (flow == Flow::kNormal) completed_iteration = true;
  }
  if (!completed_iteration) return exec_body(node.else_body);
  return Flow::kNormal;
}

Value Renderer::call_macro(const FunctionData& macro, const CallArgs& args) {
  const Node& node = *macro.macro;
  if (args.positional.size() > node.params.size()) {
    throw JinjaError(fmt::format("macro '{}' takes not more than {} argument(s)", node.text,
                                 node.params.size()));
  }
  Frame frame;
  for (std::size_t i = 0; i < node.params.size(); ++i) {
    Value value;
    if (i < args.positional.size()) value = args.positional[i];
    frame.emplace_back(node.params[i].name, std::move(value));
  }
  for (const auto& [name, value] : args.keyword) {
    bool found = false;
    for (std::size_t i = 0; i < node.params.size(); ++i) {
      if (node.params[i].name != name) continue;
      if (i < args.positional.size()) {
        throw JinjaError(
            fmt::format("macro '{}' got multiple values for argument '{}'", node.text, name));
      }
      frame[i].second = value;
      found = true;
    }
    if (!found) {
      throw JinjaError(fmt::format("macro '{}' takes no keyword argument '{}'", node.text, name));
    }
  }
  const std::size_t saved_floor = frame_floor_;
  frames_.push_back(std::move(frame));
  frame_floor_ = frames_.size() - 1;
  std::string text;
  try {
    // Defaults are evaluated at call time, in the macro's scope (they may use earlier params).
    for (std::size_t i = 0; i < node.params.size(); ++i) {
      Value& slot = frames_.back()[i].second;
      if (slot.is_undefined() && node.params[i].default_value) {
        slot = eval(*node.params[i].default_value);
      } else if (slot.is_undefined()) {
        slot = Value::undefined(fmt::format("'{}' is undefined", node.params[i].name));
      }
    }
    text = capture(node.body);
  } catch (...) {
    frames_.pop_back();
    frame_floor_ = saved_floor;
    throw;
  }
  frames_.pop_back();
  frame_floor_ = saved_floor;
  return Value::string(std::move(text));
}

std::string render_program(const Program& program, Entries variables) {
  Renderer renderer(program, std::move(variables));
  return renderer.render();
}

}  // namespace polyinfer::inline v0::detail

// SPDX-License-Identifier: Apache-2.0
// Chat template failures: parse errors name the line and column, raise_exception's message is
// passed through, and hostile templates hit limits instead of hanging or crashing.
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "polyinfer/error.hpp"
#include "polyinfer/tokenizer.hpp"

namespace polyinfer {
namespace {

// The Error a template throws when parsed and rendered on a short conversation.
Error error_of(const std::string& source, std::vector<ChatMessage> messages = {{"user", "hi"}}) {
  try {
    (void)ChatTemplate::parse(source).render(messages, true, "<s>", "</s>");
  } catch (const Error& error) {
    return error;
  }
  FAIL("no error from: " << source);
  return Error(ErrorCode::kInternal, "", "");
}

constexpr const char* kMistralV01 =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ "
    "'[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
    "message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and "
    "assistant roles are supported!') }}{% endif %}{% endfor %}";

TEST_CASE("parse errors name the line and column", "[chat_template]") {
  SECTION("unclosed expression tag") {
    const Error error = error_of("line one\n  {{ messages[0]['content'] ");
    CHECK(error.code() == ErrorCode::kTemplate);
    CHECK(error.where() == "chat template line 2 col 3");
    CHECK_THAT(error.message(), Catch::Matchers::Contains("unclosed '{{'"));
  }
  SECTION("unclosed block") {
    const Error error = error_of("{% for m in messages %}\n{{ m.content }}");
    CHECK(error.where() == "chat template line 2 col 16");
    CHECK_THAT(error.message(), Catch::Matchers::Contains("'for' block opened at line 1 col 4"));
    CHECK_THAT(error.message(), Catch::Matchers::Contains("'endfor'"));
  }
  SECTION("mismatched end tag") {
    const Error error = error_of("{% if true %}x{% endfor %}");
    CHECK(error.where() == "chat template line 1 col 18");
    CHECK_THAT(error.message(), Catch::Matchers::Contains("'endif'"));
  }
  SECTION("unknown filter") {
    const Error error = error_of("{{ 'x' }}\n{{ messages | shout }}");
    CHECK(error.where() == "chat template line 2 col 15");
    CHECK(error.message() == "no filter named 'shout'");
  }
  SECTION("unknown test") {
    CHECK(error_of("{{ 1 is prime }}").message() == "no test named 'prime'");
  }
  SECTION("unknown tag") {
    CHECK(error_of("{% include 'other.jinja' %}").message() ==
          "the 'include' tag is not supported in chat templates");
    CHECK(error_of("{% shout %}").message() == "unknown tag 'shout'");
  }
  SECTION("bad tokens") {
    CHECK_THAT(error_of("{{ 'open }}").message(), Catch::Matchers::Contains("unterminated string"));
    CHECK_THAT(error_of("{{ 1 ? 2 }}").message(),
               Catch::Matchers::Contains("unexpected character"));
    CHECK_THAT(error_of("{{ (1 ] }}").message(), Catch::Matchers::Contains("unexpected ']'"));
    CHECK_THAT(error_of("{# never closed").message(), Catch::Matchers::Contains("comment"));
  }
}

TEST_CASE("render errors name the place and the problem", "[chat_template]") {
  SECTION("unknown function") {
    const Error error = error_of("{{ shout('x') }}");
    CHECK(error.code() == ErrorCode::kTemplate);
    CHECK(error.message() == "'shout' is undefined");
  }
  SECTION("attribute of an undefined value") {
    CHECK(error_of("{{ nothing.here }}").message() == "'nothing' is undefined");
  }
  SECTION("type errors") {
    CHECK(error_of("{{ 'a' + 1 }}").message() ==
          "unsupported operand type(s) for +: 'str' and 'int'");
    CHECK(error_of("{{ 1 // 0 }}").message() == "integer division or modulo by zero");
  }
}

TEST_CASE("raise_exception becomes Error(kTemplate) with its message", "[chat_template]") {
  const ChatTemplate mistral = ChatTemplate::parse(kMistralV01);
  const std::vector<ChatMessage> alternating = {{"user", "a"}, {"assistant", "b"}, {"user", "c"}};
  CHECK(mistral.render(alternating, false, "<s>", "</s>") ==
        "<s>[INST] a [/INST]b</s> [INST] c [/INST]");

  const std::vector<ChatMessage> doubled = {{"user", "a"}, {"user", "b"}};
  try {
    (void)mistral.render(doubled, false, "<s>", "</s>");
    FAIL("bad alternation must throw");
  } catch (const Error& error) {
    CHECK(error.code() == ErrorCode::kTemplate);
    CHECK(error.message() == "Conversation roles must alternate user/assistant/user/assistant/...");
    CHECK_THAT(error.where(), Catch::Matchers::StartsWith("chat template line 1 col "));
  }
  const std::vector<ChatMessage> system = {{"system", "s"}, {"user", "a"}};
  CHECK(error_of(kMistralV01, system).message() ==
        "Conversation roles must alternate user/assistant/user/assistant/...");
}

TEST_CASE("hostile templates stop at limits", "[chat_template]") {
  SECTION("deep nesting") {
    CHECK_THAT(
        error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").message(),
        Catch::Matchers::Contains("nested deeper"));
    std::string blocks;
    for (int i = 0; i < 1000; ++i) blocks += "{% if true %}";
    CHECK_THAT(error_of(blocks).message(), Catch::Matchers::Contains("nested deeper"));
  }
  SECTION("unbounded recursion") {
    CHECK_THAT(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").message(),
               Catch::Matchers::Contains("recursion"));
  }
  SECTION("too much work") {
    CHECK_THAT(error_of("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}"
                        "{% endfor %}")
                   .message(),
               Catch::Matchers::Contains("work budget"));
    CHECK_THAT(error_of("{{ range(1000000000) | length }}").message(),
               Catch::Matchers::Contains("Range too big"));
  }
  SECTION("too much output or memory") {
    CHECK_THAT(error_of("{{ 'x' * 1000000000000 }}").message(),
               Catch::Matchers::Contains("longer than"));
    CHECK_THAT(error_of("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}"
                        "{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}")
                   .message(),
               Catch::Matchers::Contains("longer than"));
    CHECK_THAT(error_of("{% set ns = namespace(l=[1]) %}"
                        "{% for i in range(60) %}{% set ns.l = ns.l + ns.l %}{% endfor %}")
                   .message(),
               Catch::Matchers::Contains("longer than"));
    CHECK_THAT(error_of("{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}").message(),
               Catch::Matchers::Contains("longer than"));
  }
  SECTION("deeply nested values") {
    CHECK_THAT(error_of("{% set ns = namespace(v=[]) %}"
                        "{% for i in range(1000) %}{% set ns.v = [ns.v] %}{% endfor %}")
                   .message(),
               Catch::Matchers::Contains("nested deeper"));
  }
}

TEST_CASE("one ChatTemplate renders from many threads at once", "[chat_template]") {
  const ChatTemplate chat_template = ChatTemplate::parse(
      "{% set ns = namespace(count=0) %}{% for m in messages %}{% set ns.count = ns.count + 1 %}"
      "<{{ m.role }}>{{ m.content | trim }}{% endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}{{ ns.count }}");
  std::vector<std::string> outputs(8);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < outputs.size(); ++t) {
    threads.emplace_back([&, t] {
      const std::vector<ChatMessage> messages = {{"user", "  hi " + std::to_string(t) + " "}};
      for (int i = 0; i < 200; ++i) outputs[t] = chat_template.render(messages, t % 2 == 0);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (std::size_t t = 0; t < outputs.size(); ++t) {
    CHECK(outputs[t] == "<user>hi " + std::to_string(t) + (t % 2 == 0 ? "<assistant>" : "") + "1");
  }
}

}  // namespace
}  // namespace polyinfer

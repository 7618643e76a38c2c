// SPDX-License-Identifier: Apache-2.0
// Chat templates against real Jinja2: tests/data/chat_templates.json holds real model templates,
// conversations and feature snippets rendered by jinja2 as transformers configures it
// (scripts/dev/render_chat_templates.py); every case must render to the same text here.
#include <catch2/catch.hpp>

#include <array>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "polyinfer/error.hpp"
#include "polyinfer/tokenizer.hpp"
#include "support/fixtures.hpp"
#include "tokenizer/jinja_json.hpp"
#include "tokenizer/jinja_template.hpp"

namespace polyinfer::detail {
namespace {

using Json = nlohmann::ordered_json;

const Json& document() {
  static const Json json = [] {
    const std::filesystem::path path =
        std::filesystem::path(__FILE__).parent_path() / "../../data/chat_templates.json";
    return Json::parse(test::read_file(path));
  }();
  return json;
}

const Json& template_named(const std::string& name) {
  for (const Json& entry : document()["templates"]) {
    if (entry["name"] == name) return entry;
  }
  FAIL("no template named " << name);
  static const Json none;
  return none;
}

// The expected text with the generator's fixed strftime_now date replaced by today's.
std::string expected_text(const Json& test_case) {
  std::string expected = test_case["expected"].get<std::string>();
  if (!test_case.contains("today")) return expected;
  const std::string format = test_case["today"]["format"].get<std::string>();
  const std::string fixed = test_case["today"]["fixed"].get<std::string>();
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::array<char, 64> buffer{};
  const std::size_t size = std::strftime(buffer.data(), buffer.size(), format.c_str(), &local);
  const std::string today(buffer.data(), size);
  for (std::size_t at = expected.find(fixed); at != std::string::npos;
       at = expected.find(fixed, at + today.size())) {
    expected.replace(at, fixed.size(), today);
  }
  return expected;
}

// jinja2's message for raise_exception is "TemplateError: <message>"; ours is the message.
void check_error(const Error& error, const Json& test_case) {
  CHECK(error.code() == ErrorCode::kTemplate);
  CHECK_THAT(error.where(), Catch::Matchers::StartsWith("chat template"));
  const std::string jinja_error = test_case["error"].get<std::string>();
  const std::string prefix = "TemplateError: ";
  if (jinja_error.rfind(prefix, 0) == 0)
    CHECK(error.message() == jinja_error.substr(prefix.size()));
}

Entries variables_from(const Json& context) {
  Entries variables;
  for (const auto& [key, value] : context.items())
    variables.emplace_back(key, value_from_json(value));
  return variables;
}

TEST_CASE("chat templates of real models render as jinja2 renders them", "[chat_template]") {
  std::size_t checked = 0;
  for (const Json& test_case : document()["cases"]) {
    const Json& entry = template_named(test_case["template"].get<std::string>());
    const bool add_generation_prompt = test_case["add_generation_prompt"].get<bool>();
    INFO("template " << test_case["template"].get<std::string>() << ", conversation "
                     << test_case["conversation"].get<std::string>() << ", add_generation_prompt "
                     << add_generation_prompt);
    std::vector<ChatMessage> messages;
    for (const Json& message :
         document()["conversations"][test_case["conversation"].get<std::string>()]) {
      messages.push_back(
          {message["role"].get<std::string>(), message["content"].get<std::string>()});
    }
    const ChatTemplate chat_template = ChatTemplate::parse(entry["template"].get<std::string>());
    const std::string bos = entry["bos_token"].get<std::string>();
    const std::string eos = entry["eos_token"].get<std::string>();
    if (test_case.contains("expected")) {
      CHECK(chat_template.render(messages, add_generation_prompt, bos, eos) ==
            expected_text(test_case));
    } else {
      try {
        (void)chat_template.render(messages, add_generation_prompt, bos, eos);
        FAIL("expected an error: " << test_case["error"].get<std::string>());
      } catch (const Error& error) {
        check_error(error, test_case);
      }
    }
    ++checked;
  }
  CHECK(checked >= 200);
}

TEST_CASE("tool-calling branches of chat templates render as jinja2 renders them",
          "[chat_template]") {
  for (const Json& test_case : document()["context_cases"]) {
    const std::string name = test_case["template"].get<std::string>();
    INFO("template " << name << ", context " << test_case["context"].dump());
    const ChatTemplateImpl chat_template(template_named(name)["template"].get<std::string>());
    if (test_case.contains("expected")) {
      CHECK(chat_template.render(variables_from(test_case["context"])) == expected_text(test_case));
    } else {
      try {
        (void)chat_template.render(variables_from(test_case["context"]));
        FAIL("expected an error: " << test_case["error"].get<std::string>());
      } catch (const Error& error) {
        check_error(error, test_case);
      }
    }
  }
}

TEST_CASE("Jinja features render as jinja2 renders them", "[chat_template]") {
  for (const Json& test_case : document()["snippets"]) {
    const std::string source = test_case["template"].get<std::string>();
    INFO("template " << source);
    if (test_case.contains("expected")) {
      const ChatTemplateImpl chat_template(source);
      CHECK(chat_template.render(variables_from(test_case["context"])) == expected_text(test_case));
    } else {
      INFO("jinja2: " << test_case["error"].get<std::string>());
      try {
        const ChatTemplateImpl chat_template(source);
        (void)chat_template.render(variables_from(test_case["context"]));
        FAIL("expected an error");
      } catch (const Error& error) {
        check_error(error, test_case);
      }
    }
  }
}

TEST_CASE("the tiny-qwen2 fixture's chat prompt is reproduced", "[chat_template]") {
  POLYINFER_SHARED_OR_RETURN(model, "fixtures/models/tiny-qwen2");
  const Json config = Json::parse(test::read_file(model / "tokenizer_config.json"));
  const Json cases = Json::parse(test::read_file(model / "cases.json"));
  const ChatTemplate chat_template =
      ChatTemplate::parse(config["chat_template"].get<std::string>());
  const std::vector<ChatMessage> messages = {
      {"system", "You are a concise assistant."},
      {"user", "What is 2+2? Answer in one word."},
  };
  bool found = false;
  for (const Json& test_case : cases["cases"]) {
    if (test_case["kind"] != "chat_template") continue;
    found = true;
    CHECK(chat_template.render(messages, true) == test_case["text"].get<std::string>());
  }
  CHECK(found);
}

}  // namespace
}  // namespace polyinfer::detail

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Renders real chat templates (scripts/dev/chat_templates/*.jinja) and feature snippets with
# jinja2 configured as transformers does, writing tests/data/chat_templates.json for the C++ tests.
"""Expected outputs for polyinfer's Jinja chat-template interpreter.

Usage: python3 scripts/dev/render_chat_templates.py   (needs `pip install jinja2`)

jinja2 is set up as transformers' apply_chat_template sets it up: an ImmutableSandboxedEnvironment
with trim_blocks=True, lstrip_blocks=True and the loopcontrols extension, a `tojson` filter that is
json.dumps(ensure_ascii=False, ...), and the globals raise_exception and strftime_now. Chat
conversations are rendered with the variables transformers passes: messages, tools=None,
documents=None, add_generation_prompt, bos_token and eos_token.

strftime_now returns a fixed date (31 Dec 1999) so that expected outputs are stable; cases that
contain it say so ("today") and the C++ test substitutes its own date.
"""

import datetime
import json
import os
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE_DIR = os.path.join(ROOT, "scripts", "dev", "chat_templates")
OUTPUT = os.path.join(ROOT, "tests", "data", "chat_templates.json")
FIXED_NOW = datetime.datetime(1999, 12, 31, 12, 0, 0)

# name: (source, bos_token, eos_token). The .jinja files hold the templates' exact text as
# shipped in the model's tokenizer_config.json (copied via the public sources named here).
TEMPLATES = {
    "tiny-qwen2-chatml": ("shared/fixtures/models/tiny-qwen2/tokenizer_config.json", "", "<|im_end|>"),
    "qwen2-instruct": ("Qwen/Qwen2-0.5B-Instruct tokenizer_config.json", "", "<|im_end|>"),
    "qwen2.5-instruct": ("Qwen/Qwen2.5-*-Instruct tokenizer_config.json", "", "<|im_end|>"),
    "llama-2-chat": ("meta-llama/Llama-2-13b-chat-hf tokenizer_config.json", "<s>", "</s>"),
    "llama-3-8b-instruct": ("meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json",
                            "<|begin_of_text|>", "<|eot_id|>"),
    "llama-3.1-8b-instruct": ("meta-llama/Llama-3.1-8B-Instruct tokenizer_config.json",
                              "<|begin_of_text|>", "<|eot_id|>"),
    "llama-3.2-3b-instruct": ("meta-llama/Llama-3.2-3B-Instruct (llama.cpp models/templates)",
                              "<|begin_of_text|>", "<|eot_id|>"),
    "mistral-7b-instruct-v0.1": ("mistralai/Mistral-7B-Instruct-v0.1 tokenizer_config.json", "<s>", "</s>"),
    "mixtral-8x7b-instruct-v0.1": ("mistralai/Mixtral-8x7B-Instruct-v0.1 tokenizer_config.json", "<s>", "</s>"),
    "mistral-7b-instruct-v0.3": ("mistralai/Mistral-7B-Instruct-v0.3 tokenizer_config.json", "<s>", "</s>"),
    "phi-3-mini-4k-instruct": ("microsoft/Phi-3-mini-4k-instruct tokenizer_config.json (first release)",
                               "<s>", "<|endoftext|>"),
    "phi-3.5-mini-instruct": ("microsoft/Phi-3.5-mini-instruct (llama.cpp models/templates)",
                              "<s>", "<|endoftext|>"),
    "gemma-7b-it": ("google/gemma-7b-it tokenizer_config.json", "<bos>", "<eos>"),
    "zephyr-7b-beta": ("HuggingFaceH4/zephyr-7b-beta tokenizer_config.json", "<s>", "</s>"),
    "deepseek-coder-33b-instruct": ("deepseek-ai/deepseek-coder-33b-instruct tokenizer_config.json",
                                    "<｜begin▁of▁sentence｜>", "<|EOT|>"),
    "openchat-3.5-0106": ("openchat/openchat-3.5-0106 tokenizer_config.json", "<s>", "<|end_of_turn|>"),
    "falcon-rw-1b-chat": ("ericzzz/falcon-rw-1b-chat tokenizer_config.json", "<|endoftext|>", "<|endoftext|>"),
    "smaug-34b-v0.1": ("abacusai/Smaug-34B-v0.1 tokenizer_config.json", "<s>", "</s>"),
    "synatra-mixtral-8x7b": ("maywell/Synatra-Mixtral-8x7B tokenizer_config.json", "<s>", "</s>"),
    "functionary-medium-v2.2": ("meetkai/functionary-medium-v2.2 tokenizer_config.json", "<s>", "</s>"),
}

CONVERSATIONS = {
    "user": [{"role": "user", "content": "Hello!"}],
    "system_user": [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "What is 2+2? Answer in one word."},
    ],
    "user_assistant_user": [
        {"role": "user", "content": "Hello, how are you?"},
        {"role": "assistant", "content": "I'm doing great. How can I help you today?"},
        {"role": "user", "content": "I'd like to show off how chat templating works!"},
    ],
    "system_multi_turn": [
        {"role": "system", "content": "You are a helpful assistant"},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "   I am an assistant   "},
        {"role": "user", "content": "  Who are you?\n"},
        {"role": "assistant", "content": "A model."},
    ],
    "unicode": [
        {"role": "user", "content": "Café — 東京 🦙 \"quotes\" 'apostrophes' back\\slash\n\tnew line {{ not jinja }}"},
    ],
    "bad_alternation": [
        {"role": "user", "content": "First"},
        {"role": "user", "content": "Second"},
    ],
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}

TOOL_CONVERSATION = [
    {"role": "system", "content": "You are a weather bot."},
    {"role": "user", "content": "What's the weather like in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call12345", "type": "function",
         "function": {"name": "get_current_weather", "arguments": {"location": "Paris, France", "unit": "celsius"}}}]},
    {"role": "tool", "tool_call_id": "call12345", "content": "{\"temperature\": 18.5, \"sky\": \"cloudy\"}"},
    {"role": "assistant", "content": "It is 18.5 °C and cloudy in Paris."},
    {"role": "user", "content": "Thanks!"},
]

# (template, context, extra variables) rendered with the full variables given; these reach the
# parts of the templates that the plain role/content API cannot (tools, tool calls, dates).
CONTEXT_CASES = [
    ("qwen2.5-instruct", {"messages": TOOL_CONVERSATION, "tools": [WEATHER_TOOL], "add_generation_prompt": True}),
    ("qwen2.5-instruct", {"messages": TOOL_CONVERSATION[1:], "tools": [WEATHER_TOOL, WEATHER_TOOL],
                          "add_generation_prompt": False}),
    ("llama-3.1-8b-instruct", {"messages": TOOL_CONVERSATION, "tools": [WEATHER_TOOL],
                               "add_generation_prompt": True, "bos_token": "<|begin_of_text|>"}),
    ("llama-3.1-8b-instruct", {"messages": TOOL_CONVERSATION, "tools": [WEATHER_TOOL], "tools_in_user_message": False,
                               "date_string": "01 Feb 2025", "add_generation_prompt": True,
                               "bos_token": "<|begin_of_text|>"}),
    ("llama-3.1-8b-instruct", {"messages": TOOL_CONVERSATION[:4], "builtin_tools": ["brave_search", "code_interpreter"],
                               "tools": None, "add_generation_prompt": False, "bos_token": "<|begin_of_text|>"}),
    ("llama-3.1-8b-instruct", {"messages": [{"role": "user", "content": "hi"},
                                            {"role": "tool", "content": {"result": [1, 2.5, "x"]}}],
                               "add_generation_prompt": True, "bos_token": "<|begin_of_text|>"}),
    ("llama-3.2-3b-instruct", {"messages": TOOL_CONVERSATION, "tools": [WEATHER_TOOL],
                               "add_generation_prompt": True, "bos_token": "<|begin_of_text|>"}),
    ("mistral-7b-instruct-v0.3", {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What's the weather like in Paris?"},
        {"role": "assistant", "tool_calls": [{"id": "abcdefghi", "type": "function", "function": {
            "name": "get_current_weather", "arguments": {"location": "Paris"}}}]},
        {"role": "tool", "tool_call_id": "abcdefghi", "content": {"temperature": 18}},
        {"role": "assistant", "content": "  18 degrees.  "},
        {"role": "user", "content": "And in Oslo?"}],
        "tools": [WEATHER_TOOL], "bos_token": "<s>", "eos_token": "</s>"}),
    ("mistral-7b-instruct-v0.3", {"messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "short", "function": {"name": "f", "arguments": {}}}]}],
        "bos_token": "<s>", "eos_token": "</s>"}),
    ("functionary-medium-v2.2", {"messages": [
        {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {
            "name": "get_current_weather", "arguments": "{\n  \"location\": \"Hanoi\"\n}"}}]},
        {"role": "user", "content": "what's the weather like in Hanoi?"},
        {"role": "tool", "name": "get_current_weather", "content": "sunny"}], "add_generation_prompt": True}),
]

# Feature snippets: (template, context). Each is rendered by jinja2; errors are recorded as such.
SNIPPETS = [
    # whitespace control, trim_blocks, lstrip_blocks
    ("  {% if true %}\n    yes\n  {% endif %}\n  after\n", {}),
    ("a  {%- if true -%}  b  {%- endif -%}  c", {}),
    ("a\n  {{- 'x' -}}  \n  b", {}),
    ("{% for i in [1,2] %}\n  {{ i }}\n{% endfor %}\n", {}),
    ("{%+ if true %}x{% endif +%}\ny", {}),
    ("line\n    {# comment #}\nnext", {}),
    ("a {#- comment -#} b", {}),
    ("x\r\ny\rz\n\n", {}),
    ("{% raw %}{{ not a tag }}{% endraw %}", {}),
    ("  {%- raw -%}  {{ x }}  {%- endraw -%}  ", {}),
    ("text   \n  {% set x = 1 %}  \nmore", {}),
    ("{{ 'a' }}  {% if true %}x{% endif %}", {}),
    ("\t{% if true %}tab{% endif %}", {}),
    ("{% if true %}\n\n{% endif %}", {}),
    # literals and output
    ("{{ 'it\\'s' }} {{ \"say \\\"hi\\\"\" }} {{ 'tab\\there' }} {{ '\\u00e9\\x41\\101' }} {{ 'a' 'b' }}", {}),
    ("{{ none }} {{ true }} {{ False }} {{ 1.0 }} {{ 1e3 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1.5e-5 }} {{ 123456789.125 }}", {}),
    ("{{ [1, 'a', none, true, 2.5, [], {}] }} {{ {'k': 'v', 'n': [1]} }} {{ (1,) }} {{ (1, 2) }} {{ () }}", {}),
    ("{{ x }}|{{ x is undefined }}|{{ x|default('d') }}|{{ ''|default('e', true) }}", {}),
    ("{{ ['it\\'s', 'a\"b', 'both\\'\"', '\\n\\x01', 'é'] }}", {}),
    ("{{ 0x1F }} {{ 1_000 }} {{ 0b101 }} {{ 0o17 }} {{ 1_0.5_0 }}", {}),
    # operators
    ("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ -2 ** 2 }}", {}),
    ("{{ 'ab' * 3 }} {{ [1] * 2 }} {{ 'a' ~ 1 ~ none ~ true }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }}", {}),
    ("{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}", {}),
    ("{{ 'a' in 'cat' }} {{ 1 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'cat' }} {{ x in [1] }}", {}),
    ("{{ 0 or 'x' }} {{ 'y' and 0 }} {{ none or [] }} {{ not none }} {{ 1 if false }}|{{ 'a' if 0 else 'b' }}", {}),
    ("{{ -3|abs }} {{ - 3 }} {{ +3 }} {{ 'x' + 'y' ~ 'z' }} {{ 1.5 * 2 }} {{ 10 % 4.5 }}", {}),
    ("{{ {'a': 1} == {'a': 1.0} }} {{ [1] == (1,) }} {{ none == none }} {{ x == y }}", {}),
    # subscripts, attributes, slices
    ("{{ m['role'] }} {{ m.role }} {{ m.get('missing', 'dflt') }} {{ m.get('role') }} {{ m['items'] }} {{ m.items is defined }}", {"m": {"role": "user", "items": 3}}),
    ("{{ l[0] }} {{ l[-1] }} {{ l[5] }}|{{ l[1:] }} {{ l[:-1] }} {{ l[::2] }} {{ l[::-1] }} {{ 'hello'[1:3] }} {{ 'héllo'[1] }}", {"l": [1, 2, 3, 4]}),
    ("{{ l.0 }} {{ m.a.b }} {{ m['a']['b'] }}", {"l": [9, 8], "m": {"a": {"b": "deep"}}}),
    ("{{ 'abc'.content }}|{{ ('abc'.content) is defined }}|{{ none.x }}|{{ [1].y }}", {}),
    # string methods
    ("{{ '  pad  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '  l'.lstrip() }}|{{ 'r  '.rstrip() }}", {}),
    ("{{ 'a,b,,c'.split(',') }} {{ ' a  b \\n c '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }}", {}),
    ("{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x', 'lo')) }} {{ 'hello world'.title() }} {{ \"they're 1st\".title() }}", {}),
    ("{{ 'MiXed'.upper() }} {{ 'MiXed'.lower() }} {{ 'hello WORLD'.capitalize() }} {{ 'a-b'.replace('-', '+') }} {{ 'aaa'.replace('a', 'b', 2) }}", {}),
    ("{{ 'abcabc'.find('c') }} {{ 'abcabc'.rfind('c') }} {{ 'abc'.find('z') }} {{ 'aXbXc'.count('X') }} {{ ', '.join(['a', 'b']) }}", {}),
    ("{{ 'a\\nb\\r\\nc'.splitlines() }} {{ '123'.isdigit() }} {{ 'abc'.isalpha() }} {{ 'x'.center(5, '*') }} {{ 'ab'.ljust(4) }}|", {}),
    ("{{ 'é東'.upper() }} {{ 'ÉCOLE'.lower() }} {{ 'x=1'.partition('=') }} {{ 'prefix_x'.removeprefix('prefix_') }}", {}),
    # filters
    ("{{ '  x  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'ab'|upper }}|{{ 'AB'|lower }}|{{ 'hello world-wide (x)'|title }}|{{ 'hELLO'|capitalize }}", {}),
    ("{{ [1, 2, 3]|length }} {{ 'héllo'|length }} {{ {'a': 1}|count }} {{ x|length }} {{ [3, 1]|first }} {{ [3, 1]|last }} {{ []|first is defined }}", {}),
    ("{{ ['a', 'b']|join(', ') }} {{ [1, 2]|join }} {{ users|join(', ', attribute='name') }}", {"users": [{"name": "ann"}, {"name": "bo"}]}),
    ("{{ 'a'|string }} {{ 1|string }} {{ [1]|string }} {{ '42'|int + 1 }} {{ '4.7'|int }} {{ 'x'|int(7) }} {{ '3.5'|float }} {{ 2|float }}", {}),
    ("{{ {'b': 1, 'a': [1, 2]}|tojson }} {{ 'é\"\\n'|tojson }} {{ [1, 2]|tojson(indent=2) }} {{ {'z': 1, 'a': none}|tojson(sort_keys=true) }}", {}),
    ("{{ {'a': {'b': []}, 'c': {}}|tojson(indent=4) }} {{ 1.0|tojson }} {{ [true, none]|tojson(separators=(',', ':')) }}", {}),
    ("{{ x|tojson }}", {"x": {"unicode": "東京 🦙", "ctrl": "\u0001\u007f", "float": 1e-7, "big": 12345678901234}}),
    ("{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %} {% for k, v in d.items() %}{{ k }}{% endfor %} {{ d|items|list }}", {"d": {"b": 1, "a": 2}}),
    ("{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }} {{ msgs|rejectattr('role', 'eq', 'user')|list|length }}", {"msgs": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}]}),
    ("{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3]|reject('equalto', 2)|list }} {{ ['a', '', 'b']|select|list }} {{ ['a', 'b']|map('upper')|join }}", {}),
    ("{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'c']|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ [1, 2, 2, 3, 1]|unique|list }} {{ [1, 2]|reverse|list }} {{ 'abc'|reverse }}", {}),
    ("{{ [3, 1, 2]|max }} {{ [3, 1, 2]|min }} {{ [1, 2, 3]|sum }} {{ 2.567|round(1) }} {{ 2.5|round }} {{ 3.5|round }} {{ -2|abs }}", {}),
    ("{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'x y  z'|wordcount }}|{{ '<a href=\"x\">'|e }}|{{ 'x'|replace('x', 'y') }}", {}),
    ("{{ d|dictsort }} {{ d|dictsort(by='value') }} {{ 'abc'|list }} {{ [[1, 2], [3]]|map('length')|list }}", {"d": {"b": 2, "a": 3}}),
    ("{{ 'a' is string }} {{ 1 is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ true is boolean }} {{ {} is mapping }} {{ [] is iterable }} {{ 'x' is iterable }} {{ 3 is iterable }}", {}),
    ("{{ none is none }} {{ 1 is none }} {{ x is defined }} {{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 'a' is equalto 'a' }} {{ 2 is gt 1 }} {{ 'a' is in 'cat' }}", {}),
    ("{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ range is callable }} {{ x is sameas none }} {{ true is true }} {{ 0 is false }}", {"x": None}),
    # statements
    ("{% for i in range(5) if i % 2 == 0 %}{{ i }}:{{ loop.index }}/{{ loop.length }}{{ ',' if not loop.last }}{% endfor %}", {}),
    ("{% for x in [] %}a{% else %}empty{% endfor %} {% for x in 'ab' %}{{ loop.index0 }}{{ x }}{{ loop.revindex }}{% endfor %}", {}),
    ("{% for x in [1, 2, 3] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %} {% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }} {% endfor %}", {}),
    ("{% for x in [1, 2] %}{% for y in 'ab' %}{{ loop.index }}{{ x }}{{ y }} {% endfor %}{{ loop.first }}{% endfor %}", {}),
    ("{% for x in [1, 2, 3] %}{{ loop.cycle('odd', 'even') }} {% endfor %}", {}),
    ("{% if a %}A{% elif b %}B{% else %}C{% endif %}{% if not a and b %}!{% endif %}", {"a": False, "b": True}),
    ("{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = i * 10 %}{{ x }} {% endfor %}{{ x }}", {}),
    ("{% set ns = namespace(total=0, seen=false) %}{% for i in [1, 2, 3] %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }} {{ ns.seen }}", {}),
    ("{% set a, b = 1, 2 %}{{ a }}{{ b }} {% set t = (1, 'x') %}{{ t[1] }} {% set x %}block {{ 1 + 1 }}{% endset %}[{{ x }}]", {}),
    ("{% set x | upper %}shout{% endset %}{{ x }} {% filter upper %}abc{{ 'd' }}{% endfilter %}", {}),
    ("{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', greeting='Hi') }} {{ greet() }}", {}),
    ("{% macro rec(n) %}{{ n }}{% if n > 0 %}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(3) }}", {}),
    ("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}", {}),
    ("{% generation %}gen {{ 1 }}{% endgeneration %}", {}),
    ("{% set d = dict(a=1, b='x') %}{{ d }} {{ namespace(d).b }} {{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }}", {}),
    ("{{ strftime_now('%Y-%m-%d') }} {{ strftime_now is defined }}", {}),
    ("{% if messages[0]['role'] == 'system' %}{% set messages = messages[1:] %}{% endif %}{{ messages|length }}", {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}),
    ("{{ messages[-1]['content'] }} {{ (messages|last).role }} {{ messages|map(attribute='role')|join('/') }}", {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}),
    ("{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}{% for c in m.content %}[{{ c.type }}:{{ c.text }}]{% endfor %}{% endif %}{% endfor %}", {"messages": [{"role": "user", "content": "plain"}, {"role": "user", "content": [{"type": "text", "text": "part"}]}]}),
    # errors (jinja2 raises; the C++ side must raise polyinfer::Error(kTemplate))
    ("{{ raise_exception('Custom failure: ' ~ 42) }}", {}),
    ("{{ x.y }}", {}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{{ foo() }}", {}),
    ("{{ 'x'|nosuchfilter }}", {}),
    ("{{ 'x' is nosuchtest }}", {}),
    ("{% for x in [1] %}", {}),
    ("{% if true %}{% endfor %}", {}),
    ("{{ 'unclosed", {}),
    ("{{ x ", {}),
    ("{# unclosed comment", {}),
    ("{% endif %}", {}),
    ("{% unknowntag %}", {}),
    ("{{ range(1000000)|length }}", {}),
    ("{{ (1, 2)[ }}", {}),
    ("{{ 1 +* 2 }}", {}),
    ("{{ [1, 2)] }}", {}),
    ("{% set ns = namespace() %}{% set x.y = 1 %}", {}),
    ("{% break %}", {}),
    ("{{ none < 1 }}", {}),
    ("{{ 'abc'.no_such_method() }}", {}),
    ("{{ [1].append(2) }}", {}),
]


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return FIXED_NOW.strftime(format)


class AssistantTracker(Extension):
    """{% generation %} ... {% endgeneration %}: renders its body (transformers also records
    the assistant token spans, which does not change the text)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, context):
    """{"expected": text} or {"error": message} as jinja2 renders it."""
    try:
        return {"expected": env.from_string(source).render(**context)}
    except jinja2.exceptions.TemplateSyntaxError as error:
        return {"error": f"syntax: {error.message} (line {error.lineno})"}
    except Exception as error:  # noqa: BLE001 - every failure is an expected error case
        return {"error": f"{type(error).__name__}: {error}"}


def main():
    env = make_environment()
    today = FIXED_NOW.strftime("%d %b %Y")
    templates = []
    for name, (source, bos, eos) in TEMPLATES.items():
        with open(os.path.join(TEMPLATE_DIR, name + ".jinja"), encoding="utf-8") as f:
            text = f.read()
        templates.append({"name": name, "source": source, "bos_token": bos, "eos_token": eos, "template": text})
    by_name = {t["name"]: t for t in templates}

    cases = []
    for template in templates:
        for conversation, messages in CONVERSATIONS.items():
            for add_generation_prompt in (False, True):
                context = {"messages": messages, "tools": None, "documents": None,
                           "add_generation_prompt": add_generation_prompt,
                           "bos_token": template["bos_token"], "eos_token": template["eos_token"]}
                case = {"template": template["name"], "conversation": conversation,
                        "add_generation_prompt": add_generation_prompt}
                case.update(render(env, template["template"], context))
                if today in case.get("expected", ""):
                    case["today"] = {"format": "%d %b %Y", "fixed": today}
                cases.append(case)

    context_cases = []
    for name, context in CONTEXT_CASES:
        case = {"template": name, "context": context}
        case.update(render(env, by_name[name]["template"], context))
        if today in case.get("expected", ""):
            case["today"] = {"format": "%d %b %Y", "fixed": today}
        context_cases.append(case)

    snippets = []
    for source, context in SNIPPETS:
        case = {"template": source, "context": context}
        case.update(render(env, source, context))
        if "strftime_now" in source:
            case["today"] = {"format": "%Y-%m-%d", "fixed": FIXED_NOW.strftime("%Y-%m-%d")}
        snippets.append(case)

    document = {
        "generator": "scripts/dev/render_chat_templates.py",
        "jinja2_version": jinja2.__version__,
        "python_version": sys.version.split()[0],
        "templates": templates,
        "conversations": CONVERSATIONS,
        "cases": cases,
        "context_cases": context_cases,
        "snippets": snippets,
    }
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "w", encoding="utf-8") as f:
        json.dump(document, f, ensure_ascii=False, indent=1)
        f.write("\n")
    errors = sum("error" in c for c in cases + context_cases + snippets)
    print(f"wrote {OUTPUT}: {len(templates)} templates, {len(cases)} conversation cases, "
          f"{len(context_cases)} context cases, {len(snippets)} snippets ({errors} expected errors)")


if __name__ == "__main__":
    main()

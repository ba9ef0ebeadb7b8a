#!/usr/bin/env python3
"""Makes the chat-template fixtures that Tests/ChatTemplatesTests/ChatTemplateTests.swift reads.

Every expected string is what transformers itself renders, via
`tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=..., **variables)`,
so the Swift renderer is checked against the reference implementation (jinja2 in transformers'
sandbox), never against itself.

    /work/venv/bin/python tools/make_chat_template_fixtures.py
        # (re)writes Tests/DPOTestSupport/Fixtures/chat_templates/cases.json

Templates:
  * every `chat_template` of ../shared/tokenizers/*/tokenizer_config.json (a sibling of the
    repository), read there each time and never copied into the repository; a case names it
    "shared:<folder>" (or "shared:<folder>:<name>" for a list of named templates);
  * every Tests/DPOTestSupport/Fixtures/chat_templates/templates/<name>.jinja (their sources are in
    the README beside them); a case names it "<name>".

The date: transformers' `strftime_now(format)` global calls `datetime.now()`. This script replaces
the `datetime` that transformers' chat-template module sees with one whose `now()` is the fixed
naive local time NOW below, and writes that time into each case as "now"; the Swift test passes
the same wall-clock time as `render(..., now:)` (built in the local time zone, as Python's
naive `now()` is), so `strftime_now` gives the same text on both sides.

Needs: transformers (5.x), tokenizers, jinja2. Nothing is downloaded (HF_HUB_OFFLINE=1).
"""

import datetime as _datetime
import json
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import jinja2  # noqa: E402
import tokenizers  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer, models  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402
from transformers.utils import chat_template_utils  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT_DIR = os.path.join(ROOT, "Tests", "DPOTestSupport", "Fixtures", "chat_templates")
TEMPLATE_DIR = os.path.join(OUT_DIR, "templates")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "tokenizers"))

NOW = _datetime.datetime(2025, 3, 7, 9, 5, 30)


class _FixedDatetime(_datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW


chat_template_utils.datetime = _FixedDatetime

# The special tokens each model family publishes (bos None = the tokenizer has none, so
# transformers leaves `bos_token` undefined in the template).
TOKENS = {
    "smollm2": ("<|im_start|>", "<|im_end|>"),
    "smollm3": (None, "<|im_end|>"),
    "qwen2": (None, "<|im_end|>"),
    "qwen2_5": (None, "<|im_end|>"),
    "qwen3": (None, "<|im_end|>"),
    "llama3_1": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama3_2": ("<|begin_of_text|>", "<|eot_id|>"),
    "chatml": ("<s>", "<|im_end|>"),
    "mistral_v0_1": ("<s>", "</s>"),
    "gemma": ("<bos>", "<eos>"),
    "phi3": ("<s>", "<|endoftext|>"),
    "deepseek_r1_distill": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
}

# ---------------------------------------------------------------------------------------------
# Conversations. Each is (tag, messages); messages are {"role", "content"} as ChatMessage holds.

SYSTEM = "You are a careful assistant."
UNICODE_USER = "  Grüße, 世界! 🤖 naïve café — “quotes” and 'single'\n\nSecond line\twith a tab.  "
UNICODE_ASSISTANT = "\n\n  Antwort: ½ + ¼ = ¾; emoji 👍🏽; backslash \\ and {{ braces }} {% not a tag %}  \n"

CONVERSATIONS = {
    "user": [{"role": "user", "content": "Hello!"}],
    "system_user_assistant": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What is DPO?"},
        {"role": "assistant", "content": "Direct Preference Optimization."},
    ],
    "multi_turn": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "Another one?"},
        {"role": "assistant", "content": "11"},
        {"role": "user", "content": "Thanks."},
    ],
    "user_assistant_user": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "unicode_whitespace": [
        {"role": "system", "content": "  Be brief.\n"},
        {"role": "user", "content": UNICODE_USER},
        {"role": "assistant", "content": UNICODE_ASSISTANT},
    ],
    "empty_content": [
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
    ],
    "tool_result": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Let me check."},
        {"role": "tool", "content": "{\"temperature\": 21}"},
        {"role": "tool", "content": "sunny"},
    ],
    "think_in_assistant": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"},
        {"role": "user", "content": "3+3?"},
    ],
    "system_only": [{"role": "system", "content": SYSTEM}],
    "two_users": [
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
    ],
}

# Small templates that pin down one Jinja behaviour each (whitespace control, scoping, expressions,
# filters, tests, Python methods, undefined values). They render the "multi_turn" conversation with
# bos "<s>" and eos "</s>"; a case carries its text as "template_text".
SNIPPETS = {
    # whitespace: trim_blocks, lstrip_blocks, -, +, comments, newlines
    "ws_blocks": "A\n  {% if true %}\n    B\n  {% endif %}\nC\n",
    "ws_minus": "A  {%- if true -%}  B  {%- endif -%}  C",
    "ws_loop_lines": "{% for m in messages %}\n  {{ m.role }}: {{ m.content }}\n{% endfor %}",
    "ws_variable_minus": "x {{- ' y ' -}} z\n  {{ 'v' }}\n",
    "ws_comments": "  {# comment #}\nline\n  {#- c -#}  after {# x #}\nend",
    "ws_plus": "  {%+ if true %}  keep{% endif +%}\nnext",
    "ws_blank_lines": "a\n\n{% if true %}\n\nb{% endif %}\n\n",
    "ws_crlf": "line1\r\nline2\r{{ 'x' }}\r\n{% if true %}\r\ny{% endif %}",
    "ws_raw": "{% raw %}{{ not rendered }} {% if %}{% endraw %}|{%- raw -%}  a  {%- endraw -%}  |",
    "ws_inline": "  {{ 'var' }}\n  {% set x = 1 %}  y\na {% if true %}b{% endif %}",
    "ws_nested": "{% for message in messages %}\n    {% if message.role == 'user' %}\n        User: {{ message.content }}\n    {% else %}\n        Other: {{ message.content }}\n    {% endif %}\n{% endfor %}",
    "ws_dash_loop": "{%- for m in messages -%}\n  {{ m.role }}\n{%- endfor %}\n",
    # loops
    "loop_vars": "{% for m in messages %}{{ loop.index0 }}/{{ loop.index }}/{{ loop.length }}/{{ loop.first }}/{{ loop.last }}/{{ loop.revindex }}/{{ loop.revindex0 }}|{% endfor %}",
    "loop_else": "{% for x in [] %}a{% else %}empty{% endfor %}{% for x in [1] %}one{% else %}none{% endfor %}",
    "loop_items": "{% for k, v in {'a': 1, 'b': [2, 3]}.items() %}{{ k }}={{ v }};{% endfor %}{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}",
    "loop_filter": "{% for x in range(10) if x % 3 == 0 %}{{ x }}{{ ',' if not loop.last }}{% endfor %}",
    "loop_control": "{% for x in range(5) %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "loop_scope_carry": "{% for i in [1, 2] %}<{{ x }}>{% set x = i %}{% endfor %}[{{ x }}]",
    "loop_scope_shadow": "{% set x = 'outer' %}{% for i in [1] %}{{ x }}{% set x = 'inner' %}{{ x }}{% endfor %}{{ x }}",
    "loop_string": "{% for c in 'héllo' %}{{ c }}.{% endfor %}",
    "loop_nested": "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ b }}{% endfor %}{{ loop.index }};{% endfor %}",
    "loop_neighbours": "{% for m in messages %}{{ loop.previtem.role if loop.previtem is defined else '-' }}>{{ loop.nextitem.role if loop.nextitem is defined else '-' }} {% endfor %}",
    "loop_cycle": "{% for x in [1, 2, 3] %}{{ loop.cycle('a', 'b') }}{% endfor %}",
    "loop_reversed_slice": "{% for m in messages[::-1] %}{{ m.role[0] }}{% endfor %}",
    # assignment, namespace, macros
    "set_namespace": "{% set ns = namespace(count=0, last='') %}{% for m in messages %}{% set ns.count = ns.count + 1 %}{% set ns.last = m.role %}{% endfor %}{{ ns.count }} {{ ns.last }}",
    "set_tuple": "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (1, 'x') %}{{ t }} {{ (1,) }} {{ () }}",
    "set_block": "{% set block %}  inner {{ 1 + 1 }}\n{% endset %}[{{ block }}]{% set up | upper %}text{% endset %}{{ up }}",
    "set_in_if": "{% if true %}{% set y = 'from if' %}{% endif %}{{ y }}",
    "macro": "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C', punct='.') }} {{ greet() }}",
    "macro_varargs": "{% macro tag(name) %}<{{ name }}{% for v in varargs %} {{ v }}{% endfor %}{% for k, v in kwargs|items %} {{ k }}={{ v }}{% endfor %}>{% endmacro %}{{ tag('a') }}{{ tag('b', 1, 2, x='y') }}",
    "macro_ws": "{% macro item(x) -%}\n  <{{ x }}>\n{%- endmacro %}{% for i in [1, 2] %}{{ item(i) }}{% endfor %}",
    # expressions
    "literals": "{{ 1 }} {{ 1.5 }} {{ -2 }} {{ 1e3 }} {{ 'a' 'b' }} {{ \"dq\" }} {{ true }} {{ True }} {{ none }} {{ None }} {{ [1, 'a', none, true] }} {{ {'k': 'v', 2: 3.0} }} {{ 1_000 }}",
    "arithmetic": "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'ab' * 2 }} {{ [1] * 2 }} {{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1e-7 }} {{ 10 / 4 }} {{ 3 - 5 }} {{ true + 1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 1e16 }} {{ 123456789.0 * 1000 }} {{ 1 / 3 }}",
    "concat": "{{ 'a' ~ 1 ~ none ~ true ~ [1] ~ missing ~ 2.0 }}",
    "compare": "{{ 1 < 2 }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ [1, 2] == [1, 2] }} {{ 'a' != 'b' }} {{ none == none }} {{ 1 >= 1 }} {{ true == 1 }} {{ [1, 2] < [1, 3] }}",
    "logic": "{{ 1 and 2 }} {{ 0 and 2 }} {{ 0 or 'x' }} {{ '' or [] }} {{ not 0 }} {{ not 'a' }} {{ true and not false }} {{ not 1 == 2 }}",
    "membership": "{{ 'a' in 'cat' }} {{ 'z' not in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'x' in missing }} {{ 'ü' in 'Grüße' }}",
    "ternary": "{{ 'yes' if messages else 'no' }}|{{ 'x' if false }}|{{ 1 if 0 else 2 if 0 else 3 }}",
    "access": "{{ messages[0]['role'] }} {{ messages[0].content }} {{ messages[-1].role }} {{ messages[9] is defined }} {{ messages[0].missing is defined }} {{ 'abc'[1] }} {{ [1, 2, 3][-1] }} {{ messages.0.role }} {{ messages[0]['no_such'] }}|",
    "slices": "{{ 'hello'[1:] }} {{ 'hello'[::-1] }} {{ 'hello'[1:4:2] }} {{ [1, 2, 3, 4][:2] }} {{ [1, 2, 3, 4][-2:] }} {{ messages[1:]|length }} {{ 'héllo wörld'[2:8] }} {{ [1, 2, 3][::2] }} {{ [1, 2, 3][5:] }} {{ 'abc'[-10:2] }} {{ [1, 2, 3, 4, 5][4:0:-2] }}",
    "str_methods": "{{ '  x y  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'hello'.startswith('he') }}|{{ 'hello'.endswith(('x', 'lo')) }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'MiXed'.upper() }}|{{ 'MiXed'.lower() }}|{{ \"they're bill's\".title() }}|{{ 'hELLO world'.capitalize() }}|{{ 'a-b-c'.rsplit('-', 1) }}|{{ 'abcabc'.find('c') }}|{{ 'abcabc'.rfind('c') }}|{{ 'abcabc'.count('bc') }}|{{ ', '.join(['x', 'y']) }}|{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ '\\n\\nx\\n'.lstrip('\\n') }}",
    "dict_methods": "{{ {'a': 1}.items()|list }}|{{ {'a': 1}.keys()|list }}|{{ {'a': 1}.values()|list }}|{{ {'a': 1}.get('a') }}|{{ {'a': 1}.get('b', 'dflt') }}|{{ {'a': 1}.get('b') }}|{{ messages[0].get('role') }}",
    "tests": "{{ x is defined }} {{ x is undefined }} {{ none is none }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is iterable }} {{ 'a' is iterable }} {{ [] is sequence }} {{ 1 is number }} {{ 1.0 is number }} {{ true is boolean }} {{ true is true }} {{ false is false }} {{ 1 is true }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 1 is integer }} {{ 1.0 is float }} {{ 'a' is eq 'a' }} {{ 2 is equalto 2 }} {{ 'A' is upper }} {{ 'a' is lower }} {{ 2 is in [1, 2] }} {{ missing is sequence }} {{ missing is iterable }} {{ 1 is not string }} {{ true is number }} {{ none is mapping }} {{ 1 is ge 1 }} {{ 'x' is sameas 'x' if false else none is sameas none }}",
    "filters_text": "{{ '  pad  '|trim }}|{{ 'xxpadxx'|trim('x') }}|{{ 'abc'|upper }}|{{ 'ABC'|lower }}|{{ 5|string }}|{{ 'aXbX'|replace('X', '-') }}|{{ 'aXbX'|replace('X', '-', 1) }}|{{ 'hello world-foo (bar'|title }}|{{ 'hELLO'|capitalize }}|{{ 'abc'|reverse }}|{{ 'héllo'|length }}|{{ 3|string ~ 4 }}",
    "filters_seq": "{{ messages|length }}|{{ [1, 2]|count }}|{{ [1, 2]|join('-') }}|{{ messages|map(attribute='role')|join(',') }}|{{ [3, 1, 2]|first }}|{{ [3, 1, 2]|last }}|{{ messages|selectattr('role', 'equalto', 'user')|list|length }}|{{ messages|rejectattr('role', 'equalto', 'user')|map(attribute='content')|list }}|{{ 'abc'|list }}|{{ [3, 1, 2]|sort }}|{{ ['b', 'A', 'a']|unique|list }}|{{ [1, 2, 3]|sum }}|{{ [1, 5, 3]|max }}|{{ [4, 2, 8]|min }}|{{ [1, 2, 3]|reverse|list }}|{{ {'b': 1, 'a': 2}|items|list }}|{{ [1, 0, 2]|select|list }}|{{ [1, 2, 3, 4]|reject('odd')|list }}|{{ messages|selectattr('content')|list|length }}|{{ [1, 2]|map('string')|join }}|{{ messages|map(attribute='nope', default='?')|join }}|{{ ['b', 'C', 'a']|sort(reverse=true) }}|{{ messages|selectattr('role', '==', 'assistant')|map(attribute='content')|first }}",
    "filters_numbers": "{{ '42'|int + 1 }}|{{ '3.9'|int }}|{{ 'x'|int }}|{{ 3.7|int }}|{{ '2.5'|float }}|{{ -3|abs }}|{{ 2.567|round(2) }}|{{ 2.5|round }}|{{ 3|round }}|{{ 2.1|round(0, 'ceil') }}|{{ ' 12 '|int }}|{{ '0x1A'|int(0, 16) }}|{{ 'x'|float(1.5) }}",
    "filters_default": "{{ missing|default('d') }}|{{ ''|default('e', true) }}|{{ none|default('n') }}|{{ false|d('f') }}|{{ 0|default('z', boolean=true) }}",
    "tojson": "{{ {'a': 'x\"y', 'b': [1, 2.5, none, true], 'c': {'d': 'é\\n\\t'}}|tojson }}|{{ {'a': 1, 'b': [1, 2]}|tojson(indent=2) }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ 'ü😀'|tojson(ensure_ascii=true) }}|{{ [1, [2, {}], []]|tojson(indent=4) }}|{{ {'k': 1}|tojson(separators=(',', ':')) }}|{{ 'e\\u2028\\x01/'|tojson }}|{{ messages[0]|tojson }}|{{ 1.0|tojson }}|{{ {1: 2, none: 3, true: 4}|tojson }}",
    "repr": "{{ {'s': \"it's\", 'q': 'say \"hi\"', 'both': 'it\\'s \"x\"', 'nl': 'a\\nb', 'tab': '\\t', 'uni': 'é😀', 'bs': 'a\\\\b', 'ctl': '\\x01\\x7f\\xa0\\u200b', 'n': none, 'f': 1.0, 'l': [1, (2, 3)], 'e': {}} }}|{{ ['x'] ~ '' }}|{{ ('a',) }}",
    "indent": "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent('> ', blank=true) }}|{{ 'x\\n'|indent(first=true) }}",
    "globals": "{{ dict(a=1, b='x') }} {{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ dict({'z': 0}, y=1) }} {{ namespace(a=1) }}",
    "undefined": "[{{ missing }}][{{ missing|length }}][{{ missing|trim }}][{{ missing|string }}][{{ missing is defined }}][{{ missing|list }}][{{ missing|join }}][{{ missing|first }}][{% for x in missing %}x{% endfor %}][{{ 'a' if missing else 'b' }}][{{ missing == missing }}][{{ missing != 1 }}][{{ missing|default }}][{{ missing|items|list }}][{{ missing|tojson if false }}]",
    "none_access": "[{{ none.foo }}][{{ none.foo is defined }}][{{ (1).foo is defined }}][{{ none['x'] is defined }}][{{ 'abc'.nope is defined }}][{{ [1].nope is defined }}]",
    "filter_block": "{% filter upper %}abc {{ 'd' }}{% endfilter %}{% filter replace('a', 'o')|trim %}  banana  {% endfilter %}",
    "generation": "{% for m in messages %}{% generation %}{{ m.content }}{% set inner = 1 %}{% endgeneration %}{% endfor %}{{ inner is defined }}",
    "string_escapes": "{{ 'tab\\there' }}|{{ \"nl\\nx\" }}|{{ '\\u00e9\\x41\\101' }}|{{ 'back\\\\slash' }}|{{ 'keep\\d' }}|{{ 'q\\'s' }}|{{ \"d\\\"q\" }}|{{ 'multi\nline' }}",
    "strftime": "{{ strftime_now('%d %B %Y') }}|{{ strftime_now('%d %b %Y %H:%M:%S %A %a %m %y %j %I %p') }}|{{ strftime_now('%-d/%-m %e%%') }}",
    "context_vars": "{{ bos_token }}|{{ eos_token }}|{{ bos_token is defined }}|{{ tools is none }}|{{ tools is defined }}|{{ documents }}|{{ add_generation_prompt }}|{{ unk_token is defined }}",
    "raise": "{% if messages|length > 2 %}{{ raise_exception('custom failure: ' ~ messages|length ~ ' messages') }}{% endif %}never",
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather in a city — in °C.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city's name"},
                "days": {"type": "integer", "description": "How many days", "default": 1},
            },
            "required": ["city"],
        },
    },
}
CLOCK_TOOL = {"type": "function", "function": {"name": "now", "description": "Current time, 24h.", "parameters": {"type": "object", "properties": {}}}}

STANDARD = ["user", "system_user_assistant", "multi_turn", "user_assistant_user", "unicode_whitespace", "empty_content"]


def plan():
    """(template, conversation tag, variables) triples; each runs with and without a generation prompt."""
    runs = []

    def add(template, tags, variables=None):
        for tag in tags:
            runs.append((template, tag, variables or {}))

    for name in ["chatml", "qwen2", "phi3"]:
        add(name, STANDARD)
    add("qwen2_5", STANDARD + ["tool_result"])
    add("qwen2_5", ["user", "system_user_assistant", "tool_result"], {"tools": [WEATHER_TOOL, CLOCK_TOOL]})
    add("qwen3", STANDARD + ["tool_result", "think_in_assistant"])
    add("qwen3", ["user"], {"enable_thinking": False})
    add("qwen3", ["system_user_assistant"], {"tools": [WEATHER_TOOL]})
    add("llama3_1", STANDARD + ["tool_result"])
    add("llama3_1", ["user"], {"date_string": "01 Jan 2030"})
    add("llama3_1", ["user", "system_user_assistant"], {"tools": [WEATHER_TOOL]})
    add("llama3_1", ["system_user_assistant"], {"tools": [WEATHER_TOOL], "tools_in_user_message": False})
    add("llama3_1", ["system_only"], {"tools": [WEATHER_TOOL]})  # raise_exception: no first user message
    add("llama3_2", ["user", "system_user_assistant", "unicode_whitespace"])
    add("smollm3", STANDARD + ["tool_result"])
    add("smollm3", ["user", "system_user_assistant", "multi_turn"], {"enable_thinking": False})
    add("smollm3", ["user"], {"enable_thinking": True})
    add("smollm3", ["user", "system_user_assistant"], {"xml_tools": [WEATHER_TOOL, CLOCK_TOOL]})
    add("smollm3", ["user"], {"python_tools": ["def now() -> str: ...", "def add(a: int, b: int) -> int: ..."], "enable_thinking": False})
    for system in ["Be terse. /no_think", "/think Explain fully.", "You are SmolLM. /system_override", "/no_think"]:
        runs.append(("smollm3", ("system:" + system, [
            {"role": "system", "content": system},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "\nHello."},
        ]), {}))
    add("mistral_v0_1", ["user", "user_assistant_user", "system_user_assistant", "two_users"])
    add("gemma", ["user", "user_assistant_user", "unicode_whitespace", "system_user_assistant", "two_users"])
    add("deepseek_r1_distill", STANDARD + ["think_in_assistant"])
    for shared_name in shared_templates():
        add(shared_name, STANDARD)
    return runs


def shared_templates():
    """Names ("shared:<folder>[:<name>]") of the chat templates in ../shared/tokenizers."""
    names = []
    if not os.path.isdir(SHARED):
        return names
    for folder in sorted(os.listdir(SHARED)):
        path = os.path.join(SHARED, folder, "tokenizer_config.json")
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            template = json.load(f).get("chat_template")
        if isinstance(template, str):
            names.append("shared:" + folder)
        elif isinstance(template, list):
            names.extend("shared:" + folder + ":" + entry["name"] for entry in template)
    return names


def load_template(name):
    """The template text and its (bos, eos) tokens."""
    if name.startswith("shared:"):
        parts = name.split(":")
        with open(os.path.join(SHARED, parts[1], "tokenizer_config.json"), encoding="utf-8") as f:
            config = json.load(f)
        template = config["chat_template"]
        if isinstance(template, list):
            template = next(entry["template"] for entry in template if entry["name"] == parts[2])

        def token(value):
            return value["content"] if isinstance(value, dict) else value

        return template, (token(config.get("bos_token")), token(config.get("eos_token")))
    with open(os.path.join(TEMPLATE_DIR, name + ".jinja"), encoding="utf-8") as f:
        return f.read(), TOKENS[name]


def tiny_tokenizer(bos, eos):
    """Any tokenizer will do: only the chat-template rendering (tokenize=False) is used."""
    vocab = {"[UNK]": 0}
    for token in (bos, eos):
        if token is not None and token not in vocab:
            vocab[token] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    # Only bos and eos are special tokens here, so they are the only tokens transformers passes to the
    # template (it passes every set special token: unk_token, pad_token, ...), as ChatTemplate.render does.
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token=eos)
    assert set(tokenizer.special_tokens_map) <= {"bos_token", "eos_token"}, tokenizer.special_tokens_map
    return tokenizer


def main():
    cases = []
    failures = 0
    for template_name, conversation, variables in plan():
        template, (bos, eos) = load_template(template_name)
        tokenizer = tiny_tokenizer(bos, eos)
        # The special tokens transformers hands to the template are exactly the ones we say.
        assert tokenizer.special_tokens_map.get("bos_token") == bos, (template_name, tokenizer.special_tokens_map)
        assert tokenizer.special_tokens_map.get("eos_token") == eos
        tag, messages = conversation if isinstance(conversation, tuple) else (conversation, CONVERSATIONS[conversation])
        for add_generation_prompt in (False, True):
            case = {
                "template": template_name,
                "conversation": tag,
                "messages": messages,
                "add_generation_prompt": add_generation_prompt,
                "variables": variables,
                "bos_token": bos,
                "eos_token": eos,
                "now": NOW.isoformat(),
            }
            try:
                case["expected"] = tokenizer.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                    chat_template=template, **variables)
            except jinja2.exceptions.TemplateError as error:
                # raise_exception(...) in the template: the Swift renderer must throw with this message.
                case["expected_error"] = str(error)
                failures += 1
            cases.append(case)

    for snippet_name, text in SNIPPETS.items():
        tokenizer = tiny_tokenizer("<s>", "</s>")
        messages = CONVERSATIONS["multi_turn"]
        case = {"template": "snippet:" + snippet_name, "template_text": text, "conversation": "multi_turn",
                "messages": messages, "add_generation_prompt": False, "variables": {},
                "bos_token": "<s>", "eos_token": "</s>", "now": NOW.isoformat()}
        try:
            case["expected"] = tokenizer.apply_chat_template(messages, tokenize=False, chat_template=text)
        except jinja2.exceptions.TemplateError as error:
            case["expected_error"] = str(error)
            failures += 1
        cases.append(case)

    document = {
        "made_by": "tools/make_chat_template_fixtures.py",
        "versions": {"transformers": transformers.__version__, "jinja2": jinja2.__version__,
                     "tokenizers": tokenizers.__version__, "python": sys.version.split()[0]},
        "cases": cases,
    }
    path = os.path.join(OUT_DIR, "cases.json")
    with open(path, "w", encoding="utf-8") as f:
        # One case per line: compact, and a changed render shows up as one changed line.
        head = json.dumps({key: value for key, value in document.items() if key != "cases"}, ensure_ascii=False)
        f.write(head[:-1] + ', "cases": [\n')
        f.write(",\n".join(json.dumps(case, ensure_ascii=False) for case in cases))
        f.write("\n]}\n")
    templates = sorted({case["template"] for case in cases})
    print(f"wrote {path}: {len(cases)} cases ({failures} expecting an error) over {len(templates)} templates:")
    print("  " + ", ".join(templates))


if __name__ == "__main__":
    main()

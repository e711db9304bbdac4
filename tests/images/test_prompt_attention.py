"""A1111 prompt syntax: attention weights, BREAK and LoRA tags (images/prompt.py).

The corpus is written from A1111's documented behaviour (docs/prompt-syntax.md#attention-syntax):
``(x)`` multiplies by 1.1, ``(x:N)`` by N, ``[x]`` by 1/1.1, nesting multiplies, brackets left
open close at the end of the prompt, ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are literal,
``BREAK`` is ``("BREAK", -1)``, runs of equal weight merge. The first six cases are the examples
of the A1111 parser's own docstring.
"""

import re

import pytest

from images.prompt import (
    PromptLora,
    PromptSyntaxError,
    is_break,
    parse_lora_tag,
    parse_prompt_attention,
    parse_prompt_loras,
    prompt_plain_text,
)

UP = 1.1
DOWN = 1 / 1.1

CORPUS = [
    # A1111's docstring examples
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    ("\\(literal\\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
     [("a ", 1.0), ("house", 1.5730000000000004), (" ", 1.1), ("on", 1.0), (" a ", 1.1),
      ("hill", 0.55), (", sun, ", 1.1), ("sky", 1.4641000000000006), (".", 1.1)]),
    # explicit weights
    ("(word:1.3)", [("word", 1.3)]),
    ("(word:0.5)", [("word", 0.5)]),
    ("(word:.5)", [("word", 0.5)]),
    ("(word:+2)", [("word", 2.0)]),
    ("(word:-1)", [("word", -1.0)]),
    ("(masterpiece, best quality:1.2), 1girl, [blurry]",
     [("masterpiece, best quality", 1.2), (", 1girl, ", 1.0), ("blurry", DOWN)]),
    # a weight must follow the colon directly and be closed at once, else it is text
    ("(word: 1.3)", [("word: 1.3", UP)]),
    ("(word:1.3 )", [("word:1.3 ", UP)]),
    ("word:1.3)", [("word:1.3)", 1.0)]),
    ("a:b", [("a:b", 1.0)]),
    ("word (:1.5)", [("word ", 1.0)]),
    # nesting
    ("((word))", [("word", UP * UP)]),
    ("[[word]]", [("word", DOWN * DOWN)]),
    ("[word]", [("word", DOWN)]),
    ("((a:2):3)", [("a", 6.0)]),
    ("(a (b:1.5) c)", [("a ", UP), ("b", 1.5 * UP), (" c", UP)]),
    ("[(a:1.5)]", [("a", 1.5 * DOWN)]),
    ("(a [b] c)", [("a ", UP), ("b", DOWN * UP), (" c", UP)]),
    # unbalanced: closers with nothing open are text; openers close at the end
    ("a) b]", [("a) b]", 1.0)]),
    ("[a (b", [("a ", DOWN), ("b", UP * DOWN)]),
    # equal weights merge only when adjacent
    ("(a:1.5) (b:1.5)", [("a", 1.5), (" ", 1.0), ("b", 1.5)]),
    ("(a:1.5)(b:1.5)", [("ab", 1.5)]),
    ("(a:1.1)(b)", [("ab", 1.1)]),
    # escapes
    ("\\\\", [("\\", 1.0)]),
    ("a\\b", [("ab", 1.0)]),
    ("\\(word:1.5\\)", [("(word:1.5)", 1.0)]),
    ("(\\(x\\))", [("(x)", UP)]),
    # BREAK
    ("a BREAK b", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
    ("a, BREAK, b", [("a,", 1.0), ("BREAK", -1.0), (", b", 1.0)]),
    ("BREAK", [("", 1.0), ("BREAK", -1.0), ("", 1.0)]),
    ("a BREAK BREAK b", [("a", 1.0), ("BREAK", -1.0), ("", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
    ("aBREAK b", [("aBREAK b", 1.0)]),
    ("a break b", [("a break b", 1.0)]),
    ("(a BREAK b)", [("a", UP), ("BREAK", -UP), ("b", UP)]),
    # nothing
    ("", [("", 1.0)]),
]


@pytest.mark.parametrize(("prompt", "expected"), CORPUS, ids=[c[0] or "<empty>" for c in CORPUS])
def test_attention_corpus(prompt, expected):
    got = parse_prompt_attention(prompt)
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected], rel=1e-12)


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 30


def test_break_marker_only_outside_brackets():
    inside = parse_prompt_attention("(a BREAK b)")
    assert not any(is_break(t, w) for t, w in inside)  # A1111 reads it as the word BREAK
    assert any(is_break(t, w) for t, w in parse_prompt_attention("a BREAK b"))


@pytest.mark.parametrize("prompt", ["(x:1.2.3)", "(x:.)", "(x:+.)"])
def test_weight_that_is_not_a_number_is_an_error(prompt):
    with pytest.raises(PromptSyntaxError, match="not a number"):
        parse_prompt_attention(prompt)


def test_plain_text_drops_the_syntax():
    assert prompt_plain_text("a (red:1.3) [cat] BREAK \\(tail\\)") == "a red cat, (tail)"


# ----------------------------------------------------------------------------- LoRA tags
@pytest.mark.parametrize(("tag", "expected"), [
    ("<lora:ink:0.8>", PromptLora("ink", 0.8)),
    ("<lora:ink>", PromptLora("ink", 1.0)),
    ("<lyco:ink:0.5>", PromptLora("ink", 0.5)),
    ("<lora:ink:0.5:0.3>", PromptLora("ink", 0.3, te_weight=0.5)),
    ("<lora:ink:te=0.4:unet=0.9>", PromptLora("ink", 0.9, te_weight=0.4)),
    ("<lora:ink:unet=0.9>", PromptLora("ink", 0.9, te_weight=1.0)),
    ("<lora:ink:te=0.4>", PromptLora("ink", 0.4)),
    ("<lora:ink:0.6:te=0.2>", PromptLora("ink", 0.2)),
    ("<lora:ink:1:0.5:8>", PromptLora("ink", 0.5, te_weight=1.0)),
    ("<lora:ink:1:dyn=16>", PromptLora("ink", 1.0)),
    ("<lora:my lora v2:-1.5>", PromptLora("my lora v2", -1.5)),
])
def test_lora_tag_forms(tag, expected):
    text, loras = parse_prompt_loras(f"a cat {tag}")
    assert text == "a cat"
    assert loras == [expected]
    assert loras[0].tag == tag


def test_dyn_is_read():
    assert parse_prompt_loras("<lora:x:1:1:8>")[1][0].dyn == 8
    assert parse_prompt_loras("<lora:x:dyn=4>")[1][0].dyn == 4


def test_tags_are_removed_as_a1111_removes_them():
    # Only whitespace CLIP ignores is tidied; the commas stay (they are tokens).
    assert parse_prompt_loras("a cat <lora:ink-style:0.8>, night <lora:glow>")[0] == \
        "a cat, night"
    assert parse_prompt_loras("<lora:x:1>, a cat")[0] == ", a cat"
    assert parse_prompt_loras("a, <lora:x:1>, b")[0] == "a,, b"
    assert parse_prompt_loras("(a cat:1.2) <lora:x:1> BREAK dog")[0] == "(a cat:1.2) BREAK dog"


@pytest.mark.parametrize(("prompt", "message"), [
    ("<lora:>", "names no LoRA"),
    ("<lora::1>", "names no LoRA"),
    ("<lora:x:1:2:3:4>", "at most 3"),
    ("<lora:x:inf>", "not a finite number"),
    ("<lora:x:nan>", "not a finite number"),
    ("<lora:x:1e999>", "not a finite number"),
    ("<lora:x:abc>", "not a number"),
    ("<lora:x:11>", "outside -10..10"),
    ("<lora:x:0.5:-12>", "UNet weight -12 is outside"),
    ("<lora:x:te=20>", "TE weight 20 is outside"),
    ("<lora:x:1:1:many>", "dyn 'many' is not an integer"),
    ("<lora:x:foo=1>", "unknown argument 'foo'"),
    ("<lora:x:te=1:te=2>", "given twice"),
    ("<hypernet:x:1>", "hypernetworks are not supported"),
    ("<embedding:x>", "unknown extra network type 'embedding'"),
    ("<LORA:x:1>", "lower case"),
])
def test_bad_tags_are_errors_naming_the_tag(prompt, message):
    with pytest.raises(PromptSyntaxError, match=message) as info:
        parse_prompt_loras(f"a cat {prompt}")
    assert prompt in str(info.value)


def test_lora_tag_parser_directly():
    assert parse_lora_tag("<lora:a:0.1:0.2>", "a:0.1:0.2") == PromptLora("a", 0.2, te_weight=0.1)


# ----------------------------------------------------------------------------- not attention
@pytest.mark.parametrize(("prompt", "message"), [
    ("a [cat:dog:0.5] on a hill", "Prompt editing '[cat:dog:0.5]'"),
    ("a [cat:10]", "Prompt editing '[cat:10]'"),
    ("a [dog: 0.25]", "Prompt editing '[dog: 0.25]'"),
    ("[word:1.2]", "For a weight write (word:1.2)"),
    ("a [b [c:d:3] e]", "Prompt editing '[c:d:3]'"),
    ("[(a:1.2):b:0.5]", "Prompt editing"),
    ("a [cat|dog]", "Alternation '[cat|dog]'"),
    ("cats AND dogs", "Composable prompts"),
])
def test_other_a1111_syntax_is_refused(prompt, message):
    from images.prompt import prompt_check_supported

    with pytest.raises(PromptSyntaxError, match=re.escape(message)):
        prompt_check_supported(prompt)


@pytest.mark.parametrize("prompt", [
    "a [cat] (dog:1.2)", "[(a:1.2)]", "a [b: c] d", "[a:b]", "\\[a:1\\]", "[unclosed:1",
    "x [a:3 ]", "cats and dogs", "ANDROID", "(a:1.2) BREAK [b]", "",
])
def test_attention_only_prompts_pass(prompt):
    from images.prompt import prompt_check_supported

    prompt_check_supported(prompt)


def test_and_stays_text_in_the_negative_prompt():
    from images.prompt import prompt_check_supported

    prompt_check_supported("blurry AND ugly", negative=True)  # A1111 splits only the prompt
    with pytest.raises(PromptSyntaxError):
        prompt_check_supported("[a|b]", negative=True)

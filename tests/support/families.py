"""The model families of issue 23 as one real GGUF of each carries them (support/family.py says
what a Family holds): Qwen2.5 (Hermes), Qwen3, Qwen3-Coder, the DeepSeek-R1 Qwen distill,
gpt-oss, Llama 3.1, Mistral Small 3.2, Mistral's reasoning format, Granite 3.3, Command R7B,
GLM-4.5, Kimi K2, Phi-4-mini, SmolLM3 and Gemma 3, with DeepSeek V3.1 and Mistral Small
3.1 (the older call list).

A special token's type follows llama.cpp's converter: CONTROL when its tokenizer marks it
special or its text looks special (`<|...|>`), else USER_DEFINED. Where a type is inferred
rather than read from the model's tokenizer_config, the family's comment says so.
"""

from __future__ import annotations

# ruff: noqa: RUF001, RUF003  (DeepSeek's tokens are spelled with fullwidth bars)
from support.family import (
    ANSWER,
    ARGUMENTS,
    CALL_REASONING,
    HERMES_CALL,
    REASONING,
    Family,
    control,
    user_defined,
)

QWEN_CHAT = control("<|endoftext|>", "<|im_start|>", "<|im_end|>")

QWEN25 = Family(
    "qwen2.5",
    "Qwen/Qwen2.5-7B-Instruct",
    "Qwen-Qwen2.5-7B-Instruct.jinja",
    QWEN_CHAT + user_defined("<tool_call>", "</tool_call>"),
    eos="<|im_end|>",
    bos="<|endoftext|>",
    calling=HERMES_CALL,
    answering=ANSWER,
)

QWEN3 = Family(
    "qwen3",
    "Qwen/Qwen3-0.6B",
    "Qwen-Qwen3-0.6B.jinja",
    QWEN_CHAT
    + user_defined(
        "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"
    ),
    eos="<|im_end|>",
    bos="<|endoftext|>",
    thinking=f"<think>\n{REASONING}\n</think>\n\n{ANSWER}",
    calling=f"<think>\n{CALL_REASONING}\n</think>\n\n{HERMES_CALL}",
)

QWEN3_CODER = Family(
    "qwen3-coder",
    "Qwen/Qwen3-Coder-30B-A3B-Instruct",
    "Qwen3-Coder.jinja",
    QWEN3.specials,
    eos="<|im_end|>",
    bos="<|endoftext|>",
    calling=(
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
        "<parameter=unit>\nC\n</parameter>\n</function>\n</tool_call>"
    ),
)

# The Qwen-based distill: Qwen's vocabulary with DeepSeek's chat tokens in place of ChatML's
# (its tokenizer_config marks <｜User｜> and <｜Assistant｜> not special, but their text looks
# special, so the converter types them CONTROL). Its tool-call markers (<｜tool▁calls▁begin｜>,
# ...) are not tokens of this vocabulary: they are plain text.
DEEPSEEK_R1_DISTILL = Family(
    "deepseek-r1-distill",
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
    control("<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<｜begin▁of▁sentence｜>")
    + control("<|EOT|>")
    + user_defined("<think>", "</think>", "<tool_call>", "</tool_call>"),
    eos="<｜end▁of▁sentence｜>",
    bos="<｜begin▁of▁sentence｜>",
    add_bos=True,
    # The generation prompt opens the think block: the reply holds only its end.
    thinking=f"{REASONING}\n</think>\n\n{ANSWER}",
    calling=(
        f"{CALL_REASONING}\n</think>\n\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function"
        f"<｜tool▁sep｜>get_weather\n```json\n{ARGUMENTS}\n```<｜tool▁call▁end｜>"
        "<｜tool▁calls▁end｜>"
    ),
)

# DeepSeek V3.1: DeepSeek V3's vocabulary, where the call markers are tokens (their text looks
# special, so the converter types them CONTROL; <think> and </think> are not special). Its
# generation prompt closes the think block unless `thinking` is on, and a call names the
# function right after <｜tool▁call▁begin｜>.
DEEPSEEK_V31 = Family(
    "deepseek-v3.1",
    "deepseek-ai/DeepSeek-V3.1",
    "deepseek-ai-DeepSeek-V3.1.jinja",
    control("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>")
    + control(
        "<｜tool▁calls▁begin｜>",
        "<｜tool▁calls▁end｜>",
        "<｜tool▁call▁begin｜>",
        "<｜tool▁call▁end｜>",
        "<｜tool▁sep｜>",
        "<｜tool▁output▁begin｜>",
        "<｜tool▁output▁end｜>",
    )
    + user_defined("<think>", "</think>"),
    eos="<｜end▁of▁sentence｜>",
    bos="<｜begin▁of▁sentence｜>",
    add_bos=True,
    calling=(
        f"<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{ARGUMENTS}"
        "<｜tool▁call▁end｜><｜tool▁calls▁end｜>"
    ),
    answering=ANSWER,
)

# o200k_harmony: every special is CONTROL in the file; llama.cpp retypes four of them
# (LLAMA_CPP_USER_DEFINED), and with both <|return|> and <|call|> present <|end|> is not an
# end of generation.
GPT_OSS = Family(
    "gpt-oss",
    "openai/gpt-oss-120b",
    "openai-gpt-oss-120b.jinja",
    control(
        "<|startoftext|>",
        "<|endoftext|>",
        "<|return|>",
        "<|constrain|>",
        "<|channel|>",
        "<|start|>",
        "<|end|>",
        "<|message|>",
        "<|call|>",
    ),
    eos="<|return|>",
    bos="<|startoftext|>",
    thinking=(
        f"<|channel|>analysis<|message|>{REASONING}<|end|>"
        f"<|start|>assistant<|channel|>final<|message|>{ANSWER}"
    ),
    calling=(
        f"<|channel|>analysis<|message|>{CALL_REASONING}<|end|><|start|>assistant"
        "<|channel|>commentary to=functions.get_weather <|constrain|>json"
        f"<|message|>{ARGUMENTS}<|call|>"
    ),
)

LLAMA31 = Family(
    "llama3.1",
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama-Llama-3.1-8B-Instruct.jinja",
    control(
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eom_id|>",
        "<|eot_id|>",
        "<|python_tag|>",
    ),
    eos="<|eot_id|>",
    bos="<|begin_of_text|>",
    add_bos=True,
    calling=f'{{"name": "get_weather", "parameters": {ARGUMENTS}}}',
    answering=ANSWER,
)

# Tekken: every control token is CONTROL, so [THINK] and [TOOL_CALLS] vanish from a reply that
# is detokenized without special tokens.
TEKKEN = control(
    "<unk>",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    "[TOOL_CALLS]",
    "[IMG]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[ARGS]",
    "[CALL_ID]",
)

MISTRAL_SMALL_32 = Family(
    "mistral-small-3.2",
    "mistralai/Mistral-Small-3.2-24B-Instruct-2506",
    "Mistral-Small-3.2-24B-Instruct-2506.jinja",
    TEKKEN,
    eos="</s>",
    bos="<s>",
    add_bos=True,
    calling=f"[TOOL_CALLS]get_weather[ARGS]{ARGUMENTS}",
    answering=ANSWER,
)

# Mistral Small 3.1: the older list form, [TOOL_CALLS][{"name", "arguments"}, ...] (its
# template shows no [ARGS]), as Mistral 7B v0.3 and Nemo write it too.
MISTRAL_SMALL_31 = Family(
    "mistral-small-3.1",
    "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
    "mistralai-Mistral-Small-3.1-24B-Instruct-2503.jinja",
    TEKKEN,
    eos="</s>",
    bos="<s>",
    add_bos=True,
    calling=f'[TOOL_CALLS][{{"name": "get_weather", "arguments": {ARGUMENTS}}}]',
    answering=ANSWER,
)

# Magistral's format ([THINK] ... [/THINK], then [TOOL_CALLS]name[ARGS]{...}), with the
# template of the reasoning Ministral 3 that llama.cpp keeps (Magistral Small's is alike).
MISTRAL_REASONING = Family(
    "mistral-reasoning",
    "mistralai/Ministral-3-14B-Reasoning-2512",
    "mistralai-Ministral-3-14B-Reasoning-2512.jinja",
    TEKKEN + control("[THINK]", "[/THINK]"),
    eos="</s>",
    bos="<s>",
    add_bos=True,
    thinking=f"[THINK]{REASONING}[/THINK]{ANSWER}",
    calling=f"[THINK]{CALL_REASONING}[/THINK][TOOL_CALLS]get_weather[ARGS]{ARGUMENTS}",
)

# Granite 3.3 thinks in plain-text <think></think><response></response> when the template's
# `thinking` is set; its call marker is a CONTROL token.
GRANITE = Family(
    "granite-3.3",
    "ibm-granite/granite-3.3-2b-instruct",
    "ibm-granite-granite-3.3-2B-Instruct.jinja",
    control(
        "<|end_of_text|>",
        "<|start_of_role|>",
        "<|end_of_role|>",
        "<|tool_call|>",
        "<|start_of_cite|>",
        "<|end_of_cite|>",
    ),
    eos="<|end_of_text|>",
    bos="<|end_of_text|>",
    thinking=f"<think>{REASONING}</think><response>{ANSWER}</response>",
    calling=f'<|tool_call|>[{{"name": "get_weather", "arguments": {ARGUMENTS}}}]',
    answering=ANSWER,
)

COMMAND_R7B = Family(
    "command-r7b",
    "CohereForAI/c4ai-command-r7b-12-2024",
    "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja",
    control(
        "<BOS_TOKEN>",
        "<|END_OF_TURN_TOKEN|>",
        "<|START_OF_TURN_TOKEN|>",
        "<|USER_TOKEN|>",
        "<|CHATBOT_TOKEN|>",
        "<|SYSTEM_TOKEN|>",
        "<|START_THINKING|>",
        "<|END_THINKING|>",
        "<|START_ACTION|>",
        "<|END_ACTION|>",
        "<|START_RESPONSE|>",
        "<|END_RESPONSE|>",
        "<|START_TOOL_RESULT|>",
        "<|END_TOOL_RESULT|>",
    ),
    eos="<|END_OF_TURN_TOKEN|>",
    bos="<BOS_TOKEN>",
    add_bos=True,
    thinking=(
        f"<|START_THINKING|>{REASONING}<|END_THINKING|><|START_RESPONSE|>{ANSWER}<|END_RESPONSE|>"
    ),
    calling=(
        f"<|START_THINKING|>{CALL_REASONING}<|END_THINKING|><|START_ACTION|>[\n"
        f'    {{"tool_call_id": "0", "tool_name": "get_weather", "parameters": {ARGUMENTS}}}\n'
        "]<|END_ACTION|>"
    ),
)

# The converter sets bos [gMASK], eot <|user|> and eom <|observation|>. The reasoning and call
# tags are USER_DEFINED (not special in its tokenizer: vLLM's GLM parsers read them as text).
# llama.cpp's glm_4_5.jinja: the official template, taught to take arguments as a string.
GLM45 = Family(
    "glm-4.5",
    "zai-org/GLM-4.5",
    "glm_4_5.jinja",
    control("<|endoftext|>", "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>")
    + control("<|observation|>")
    + user_defined(
        "<think>",
        "</think>",
        "<tool_call>",
        "</tool_call>",
        "<tool_response>",
        "</tool_response>",
        "<arg_key>",
        "</arg_key>",
        "<arg_value>",
        "</arg_value>",
    ),
    eos="<|endoftext|>",
    bos="[gMASK]",
    eot="<|user|>",
    eom="<|observation|>",
    thinking=f"\n<think>{REASONING}</think>\n{ANSWER}",
    calling=(
        f"\n<think>{CALL_REASONING}</think>\n<tool_call>get_weather\n"
        "<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n"
        "<arg_key>unit</arg_key>\n<arg_value>C</arg_value>\n</tool_call>"
    ),
)

# Its converter types every tiktoken special CONTROL.
KIMI_K2 = Family(
    "kimi-k2",
    "moonshotai/Kimi-K2-Instruct",
    "moonshotai-Kimi-K2.jinja",
    control(
        "[BOS]",
        "[EOS]",
        "<|im_end|>",
        "<|im_user|>",
        "<|im_assistant|>",
        "<|im_system|>",
        "<|im_middle|>",
        "<|tool_calls_section_begin|>",
        "<|tool_calls_section_end|>",
        "<|tool_call_begin|>",
        "<|tool_call_argument_begin|>",
        "<|tool_call_end|>",
    ),
    eos="[EOS]",
    bos="[BOS]",
    calling=(
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
        f"<|tool_call_argument_begin|>{ARGUMENTS}<|tool_call_end|><|tool_calls_section_end|>"
    ),
    answering=ANSWER,
)

# Microsoft's template: tools come in the system message's "tools" key, as a string.
PHI4_MINI = Family(
    "phi-4-mini",
    "microsoft/Phi-4-mini-instruct",
    "microsoft-Phi-4-mini-instruct.jinja",
    control(
        "<|endoftext|>",
        "<|system|>",
        "<|end|>",
        "<|user|>",
        "<|assistant|>",
        "<|tool|>",
        "<|/tool|>",
        "<|tool_call|>",
        "<|/tool_call|>",
        "<|tool_response|>",
    ),
    eos="<|endoftext|>",
    bos="<|endoftext|>",
    calling=f'<|tool_call|>[{{"name": "get_weather", "arguments": {ARGUMENTS}}}]<|/tool_call|>',
    answering=ANSWER,
)

# Unsloth's edit of the official template (the one its GGUFs carry: no tools). Whether <think>
# is special in its tokenizer is not checked here: USER_DEFINED is assumed, as for Qwen3.
SMOLLM3 = Family(
    "smollm3",
    "HuggingFaceTB/SmolLM3-3B",
    "HuggingFaceTB-SmolLM3-3B.jinja",
    control("<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>", "<|im_end|>")
    + user_defined("<think>", "</think>"),
    eos="<|im_end|>",
    bos="<|begin_of_text|>",
    thinking=f"<think>\n{REASONING}\n</think>\n{ANSWER}",
)

# The official template: no system role (a system message is folded into the first user
# turn). gemma3's real GGUF carries no template at all (build with chat_template=False).
GEMMA3 = Family(
    "gemma-3",
    "google/gemma-3-270m-it",
    "google-gemma-3-it.jinja",
    control("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"),
    eos="<eos>",
    bos="<bos>",
    add_bos=True,
    answering=ANSWER,
)

FAMILIES = {
    f.name: f
    for f in (
        QWEN25,
        QWEN3,
        QWEN3_CODER,
        DEEPSEEK_R1_DISTILL,
        DEEPSEEK_V31,
        GPT_OSS,
        LLAMA31,
        MISTRAL_SMALL_31,
        MISTRAL_SMALL_32,
        MISTRAL_REASONING,
        GRANITE,
        COMMAND_R7B,
        GLM45,
        KIMI_K2,
        PHI4_MINI,
        SMOLLM3,
        GEMMA3,
    )
}

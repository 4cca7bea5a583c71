"""`localoip doctor`: what a bug report needs, and a check of each configured model.

Each model is loaded and asked for one token (or one embedding, one image step) in a child
process, `localoip doctor --probe NAME`, so a native crash in llama.cpp or torch is caught and
named here instead of killing the doctor. The prompt is long enough (over 64 tokens), and a
llama.cpp model reads it in batches that long, to reach the batched matrix-multiply kernels
where a mis-built llama.cpp traps (SIGILL on AMX), as the batching engine's prompt steps do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import msgspec
from localoip.app.core.config import ModelSpec, Settings
from localoip.runtimes import capabilities as base
from localoip.runtimes.llamacpp.build import NO_AMX_FLAGS, PROBE, has_amx_kernels

PACKAGES = (
    "localoip",
    "llama-cpp-python",
    "torch",
    "diffusers",
    "sentence-transformers",
    "transformers",
    "litestar",
)
LONG_PROMPT = (
    "Here is a short story to read carefully. A lighthouse keeper lived alone on a small rocky "
    "island far from the coast. Every evening she climbed the spiral stairs, cleaned the great "
    "lens, trimmed the wick and lit the lamp, so that the fishing boats could find their way "
    "home through the fog. One winter night a storm broke the windows of the lantern room, and "
    "she held a blanket against the wind until dawn. Question: what did she do every evening?"
)
REBUILD = (
    "rebuild llama-cpp-python without the AMX kernels: in a localoip checkout run "
    "`.venv/bin/python runtimes/llamacpp/build.py --force`; elsewhere run "
    f"`CFLAGS='{' '.join(NO_AMX_FLAGS)}' CXXFLAGS='{' '.join(NO_AMX_FLAGS)}' "
    "pip install --force-reinstall --no-cache-dir --no-deps llama-cpp-python`"
)
FIXES = {
    signal.SIGILL: REBUILD,
    signal.SIGKILL: "the system killed it, most often for lack of memory: try a smaller model "
    "or a smaller n_ctx",
    signal.SIGSEGV: "a crash in native code: run `localoip doctor` again and report it with "
    "this output",
    signal.SIGABRT: "a native assertion failed: report it with this output",
}


@dataclass(frozen=True, slots=True)
class Check:
    """One model's outcome: ok, or a one-line cause and what to do about it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a bug report needs; 'not installed' when absent."""
    found = {}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def llama_system_info() -> str:
    """llama.cpp's system info (CPU features, GPU backends), read in a child process."""
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    if done.returncode != 0:
        return f"unavailable: {describe_exit(done.returncode, done.stderr)}"
    return json.loads(done.stdout.strip().splitlines()[-1])["system_info"].strip()


def describe_exit(returncode: int, stderr: str = "") -> str:
    """A child's exit in words: `killed by SIGILL (illegal instruction)`, or its code and
    the last line it wrote to stderr."""
    if returncode < 0:
        sig = signal.Signals(-returncode)
        return f"killed by {sig.name} ({signal.strsignal(sig).lower()})"
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return f"exited with code {returncode}" + (f": {last}" if last else "")


def fix_for(returncode: int) -> str:
    """What to do about a child that ended with this code; '' when nothing specific helps."""
    if returncode < 0:
        return FIXES.get(signal.Signals(-returncode), "")
    return ""


def check_model(spec: ModelSpec, config: Path, timeout: float = 300.0) -> Check:
    """Load `spec` and run one tiny request in a child process; never raises."""
    from localoip.runtimes.sources.source import is_present

    present, where = is_present(spec.source, spec.runtime)
    if not present:
        if spec.source.kind == "hf":
            return Check(spec.name, True, f"not downloaded yet ({where}); downloads on first use")
        return Check(spec.name, False, f"source missing: {where}", "install or fix `source`")
    command = [sys.executable, "-m", "localoip.app.cli.main", "doctor", "--config", str(config)]
    try:
        done = subprocess.run(
            [*command, "--probe", spec.name], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return Check(spec.name, False, f"no answer within {timeout:.0f} s", "")
    if done.returncode != 0:
        return Check(
            spec.name, False, describe_exit(done.returncode, done.stderr), fix_for(done.returncode)
        )
    return Check(spec.name, True, done.stdout.strip().splitlines()[-1])


def _chat(runtime: Any) -> str:
    message = base.ChatMessage("user", LONG_PROMPT)
    result = runtime.chat(base.ChatRequest([message], base.Sampling(max_tokens=1)))
    return f"chat ok: read {result.prompt_tokens} prompt tokens"


def _completion(runtime: Any) -> str:
    result = runtime.complete(base.CompletionRequest(LONG_PROMPT, base.Sampling(max_tokens=1)))
    return f"completion ok: read {result.prompt_tokens} prompt tokens"


def _embedding(runtime: Any) -> str:
    return f"embedding ok: {runtime.embed([LONG_PROMPT]).vectors.shape[1]} dimensions"


def _rerank(runtime: Any) -> str:
    return f"rerank ok: score {float(runtime.rerank('lighthouse', [LONG_PROMPT]).values[0]):.3f}"


def _image(runtime: Any) -> str:
    request = base.ImageRequest("a lighthouse", width=64, height=64, steps=1, seed=0)
    return f"image ok: {len(runtime.generate_images(request))} image"


PROBES: dict[base.Capability, Callable[[Any], str]] = {
    base.Capability.CHAT: _chat,
    base.Capability.COMPLETION: _completion,
    base.Capability.EMBED: _embedding,
    base.Capability.RERANK: _rerank,
    base.Capability.IMAGE: _image,
}
"""The smallest request of each capability, in the order they are tried."""


def probe(spec: ModelSpec) -> str:
    """Load the model in this process and run the smallest request of its first capability
    that PROBES knows (a model with none is only loaded).

    Returns a one-line summary; raises whatever loading or the call raises.
    """
    from localoip.runtimes.loading import load_runtime

    options = spec.options
    if hasattr(options, "prompt_chunk"):  # serving reads prompts in 64-token steps somewhere
        options = msgspec.structs.replace(options, prompt_chunk=max(64, options.prompt_chunk))
    runtime = load_runtime(spec.runtime, spec.source, options)
    for capability, request in PROBES.items():
        if capability in runtime.capabilities:
            return request(runtime)
    return f"loaded ok ({', '.join(sorted(runtime.capabilities))}: no request to probe with)"


def run(settings: Settings, out=sys.stdout) -> int:
    """Print the report and check every model; 0 when all pass, 1 otherwise."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a doctor must not wait a minute on a hub
    print("versions:", file=out)
    for package, found in package_versions().items():
        print(f"  {package:<22} {found}", file=out)
    info = llama_system_info()
    print(f"llama.cpp: {info}", file=out)
    failed = []
    if has_amx_kernels(info):
        print("  note: built with AMX kernels, which trap (SIGILL) inside many VMs", file=out)
    print(f"models ({settings.path}):", file=out)
    for spec in settings.models:
        check = check_model(spec, settings.path)
        print(f"  {spec.name:<12} {'ok  ' if check.ok else 'FAIL'}  {check.detail}", file=out)
        if not check.ok:
            failed.append(check)
    for check in failed:
        cause = f"localoip doctor: model {check.name!r} {check.detail}"
        print(cause + (f"; fix: {check.fix}" if check.fix else ""), file=out)
    return 1 if failed else 0

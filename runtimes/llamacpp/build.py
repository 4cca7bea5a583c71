"""Build and install a llama-cpp-python that runs on the machine that builds it.

Run as a plain script by `.ci/install` before localoip itself is installed, so it imports only
the standard library: `.venv/bin/python runtimes/llamacpp/build.py [--force]`.

Why these flags. llama-cpp-python ships only an sdist, and its build compiles ggml with
`-march=native` (GGML_NATIVE), so the wheel uses every SIMD extension the host has: AVX2,
AVX-512, VNNI. On Xeon VMs that advertise AMX, `-march=native` also compiles ggml's AMX
kernels, whose tile instructions trap with SIGILL inside the VM (ggml-org/llama.cpp, the AMX
tile-permission pull request #26954). We keep native and switch only AMX off with
`-mno-amx-tile -mno-amx-int8 -mno-amx-bf16` in CFLAGS/CXXFLAGS: GCC and Clang let an explicit
`-mno-*` override what `-march=native` implies, whatever the order, so ggml's
`#if defined(__AMX_INT8__)` code is left out and everything else stays native.

Why `-DLLAVA_BUILD=ON`. It builds llama.cpp's multimodal library (libmtmd), which vision models
need to read images (an `mmproj` projector in models.toml). It is the sdist's own default,
spelled out so the wheel folder's key says so; measured on 2 cores, native minus AMX, the build
took 313 s with it (53 of 193 steps are mtmd's) against 5 min 36 s recorded without.

Why our own wheel folder. pip caches a built wheel by the sdist's URL, whatever the
`CMAKE_ARGS`, so a wheel built earlier with AMX would come back. We build with
`--no-cache-dir` into `~/.cache/localoip/wheels/<key>`, where the key covers the version, the
flags and the CPU, and install from there: a later install on the same machine takes seconds.

A llama-cpp-python that is already installed with a GPU backend (CUDA, Metal, Vulkan, ...) is
left alone, and so is any build when `LOCALOIP_KEEP_LLAMA=1`.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

NO_AMX_FLAGS = ("-mno-amx-tile", "-mno-amx-int8", "-mno-amx-bf16")
# mtmd (llama.cpp's multimodal library, libmtmd) is what reads images for vision models: without
# it MTMDChatHandler cannot load. It costs about a minute of build: 313 s here with it, against
# 5 min 36 s recorded without (docs: NOTES, README "How llama-cpp-python is built").
DEFAULT_CMAKE_ARGS = "-DLLAVA_BUILD=ON"
PROBE = (
    "import json, pathlib, llama_cpp;"
    "lib = pathlib.Path(llama_cpp.__file__).parent / 'lib';"
    "print(json.dumps({'version': llama_cpp.__version__,"
    " 'gpu': bool(llama_cpp.llama_supports_gpu_offload()),"
    " 'mtmd': any(lib.glob('*mtmd*')),"
    " 'system_info': llama_cpp.llama_print_system_info().decode()}))"
)
REBUILD_COMMAND = ".venv/bin/python runtimes/llamacpp/build.py --force"


def requirement(pyproject: Path | None = None) -> str:
    """The llama-cpp-python requirement pyproject.toml declares, e.g. `llama-cpp-python==0.3.36`.

    Raises LookupError when pyproject.toml declares none.
    """
    pyproject = pyproject or Path(__file__).resolve().parents[2] / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text())
    deps = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        deps.extend(extra)
    for dep in deps:
        name, _extras, spec = re.fullmatch(
            r"([A-Za-z0-9_.-]+)\s*(\[[^\]]*\])?\s*(.*)", dep
        ).groups()
        if name == "llama-cpp-python":
            return name + spec.replace(" ", "")
    raise LookupError("pyproject.toml declares no llama-cpp-python")


def cpu_flags(cpuinfo: str) -> list[str]:
    """The `flags` of the first processor in a /proc/cpuinfo text, sorted; [] when absent."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return sorted(value.split())
    return []


def compiler_flags(machine: str, compiler_accepts: bool) -> list[str]:
    """The flags added to CFLAGS and CXXFLAGS: AMX off on x86-64 when the compiler knows it."""
    if machine.lower() in ("x86_64", "amd64") and compiler_accepts:
        return list(NO_AMX_FLAGS)
    return []


def has_amx_kernels(system_info: str) -> bool:
    """Whether llama.cpp's `llama_print_system_info()` text says the AMX kernels are in."""
    return "AMX_INT8 = 1" in system_info


def wants_mtmd(cmake_args: str) -> bool:
    """Whether a build with these CMAKE_ARGS has llama.cpp's multimodal library (on unless
    LLAVA_BUILD is switched off)."""
    return re.search(r"-DLLAVA_BUILD=(OFF|0|FALSE|NO)\b", cmake_args, re.IGNORECASE) is None


def decide(current: dict | None, keep: bool, mtmd: bool = True) -> str:
    """What to do with the installed llama-cpp-python, given its probe (None: absent) and
    whether the build asked for has mtmd.

    "keep" a GPU build, any build kept by choice, or a CPU build without AMX kernels that has
    mtmd when it is asked for; "rebuild" a CPU build with AMX kernels, or one without the mtmd
    asked for (vision models need it); "build" when none is installed.
    """
    if current is None:
        return "build"
    if keep or current["gpu"]:
        return "keep"
    if has_amx_kernels(current["system_info"]):
        return "rebuild"
    if mtmd and not current.get("mtmd", True):
        return "rebuild"
    return "keep"


def wheel_key(requirement: str, cmake_args: str, cflags: list[str], cpu: list[str]) -> str:
    """A folder name unique to what makes a wheel differ: version, flags, CPU and Python."""
    text = "\n".join(
        [requirement, cmake_args, " ".join(cflags), " ".join(cpu), platform.machine(), sys.version]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _compiler_accepts(flags: list[str]) -> bool:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text("int main(void) { return 0; }\n")
        done = subprocess.run(
            [compiler, *flags, "-march=native", "-c", str(src), "-o", str(Path(tmp) / "p.o")],
            capture_output=True,
        )
    return done.returncode == 0


def installed(python: str) -> dict | None:
    """What the llama-cpp-python in `python`'s environment reports, or None when absent."""
    import json

    done = subprocess.run([python, "-c", PROBE], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _pip(python: str, *args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([python, "-m", "pip", *args], check=True, env=env)


def build(python: str, force: bool = False) -> dict:
    """Install a llama-cpp-python that runs here into `python`'s environment; return its probe.

    Raises subprocess.CalledProcessError when pip fails, RuntimeError when the result still
    carries the AMX kernels.
    """
    current = installed(python)
    cmake_args = os.environ.get("CMAKE_ARGS", DEFAULT_CMAKE_ARGS)
    keep = os.environ.get("LOCALOIP_KEEP_LLAMA") == "1"
    action = decide(current, keep, wants_mtmd(cmake_args))
    if current and action == "keep" and not force:
        print(f"llama-cpp-python {current['version']} is installed: left alone")
        return current
    if action == "rebuild":
        print("llama-cpp-python lacks mtmd (vision) or has AMX kernels (trap in VMs): rebuilding")
    req = requirement()
    flags = compiler_flags(platform.machine(), _compiler_accepts(list(NO_AMX_FLAGS)))
    cpuinfo = Path("/proc/cpuinfo")
    cpu = cpu_flags(cpuinfo.read_text()) if cpuinfo.exists() else [platform.processor()]
    folder = Path.home() / ".cache" / "localoip" / "wheels" / wheel_key(req, cmake_args, flags, cpu)
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if not wheels or force:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"building {req} (CMAKE_ARGS={cmake_args!r}, CFLAGS+={' '.join(flags)!r})")
        print("this compiles llama.cpp and takes 5-10 minutes on 2 cores")
        env = dict(os.environ, CMAKE_ARGS=cmake_args)
        for var in ("CFLAGS", "CXXFLAGS"):
            env[var] = " ".join([env.get(var, ""), *flags]).strip()
        _pip(python, "wheel", "-q", "--no-deps", "--no-cache-dir", req, "-w", str(folder), env=env)
        wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    # Replace any installed build with ours, then let pip add what it depends on (numpy, ...).
    _pip(python, "install", "-q", "--no-deps", "--force-reinstall", str(wheels[-1]))
    _pip(python, "install", "-q", str(wheels[-1]))
    result = installed(python)
    if result is None:
        raise RuntimeError(f"llama_cpp from {wheels[-1]} does not import")
    if has_amx_kernels(result["system_info"]):
        raise RuntimeError(f"the wheel in {folder} still has AMX kernels; delete it and retry")
    print(f"llama-cpp-python {result['version']}: {result['system_info'].strip()}")
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if one is installed")
    parser.add_argument("--python", default=sys.executable, help="the environment to install to")
    args = parser.parse_args(argv)
    try:
        build(args.python, force=args.force)
    except (subprocess.CalledProcessError, RuntimeError, LookupError) as exc:
        print(f"llama_build: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

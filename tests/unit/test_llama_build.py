"""The llama-cpp-python build: native SIMD with AMX left out, and the installed build has no AMX."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from localoip.runtimes.llamacpp import build as llama_build
from support.paths import REPO

x86_with_cc = pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64") or shutil.which("cc") is None,
    reason="the AMX flags exist only for x86-64 compilers",
)


def test_requirement_is_read_from_pyproject():
    assert llama_build.requirement(REPO / "pyproject.toml") == "llama-cpp-python>=0.3.36,<0.4"


def test_cpu_flags_are_read_from_the_first_processor():
    text = "processor\t: 0\nflags\t\t: sse avx2 amx_tile\n\nprocessor\t: 1\nflags\t\t: sse\n"
    assert llama_build.cpu_flags(text) == ["amx_tile", "avx2", "sse"]
    assert llama_build.cpu_flags("model name : Apple M2\n") == []


def test_amx_is_switched_off_only_on_x86_compilers_that_know_it():
    assert llama_build.compiler_flags("x86_64", True) == [
        "-mno-amx-tile",
        "-mno-amx-int8",
        "-mno-amx-bf16",
    ]
    assert llama_build.compiler_flags("arm64", True) == []
    assert llama_build.compiler_flags("x86_64", False) == []


def test_the_wheel_folder_differs_with_the_flags_and_the_cpu():
    req, cpu = "llama-cpp-python==0.3.36", ["avx2"]
    base = llama_build.wheel_key(req, "-DLLAVA_BUILD=ON", ["-mno-amx-tile"], cpu)
    assert base == llama_build.wheel_key(req, "-DLLAVA_BUILD=ON", ["-mno-amx-tile"], cpu)
    assert base != llama_build.wheel_key(req, "-DLLAVA_BUILD=ON", [], cpu)
    assert base != llama_build.wheel_key(req, "", ["-mno-amx-tile"], cpu)
    assert base != llama_build.wheel_key(req, "-DLLAVA_BUILD=ON", ["-mno-amx-tile"], ["avx512f"])


def test_system_info_with_amx_kernels_is_recognised():
    assert llama_build.has_amx_kernels("CPU : SSE3 = 1 | AVX512 = 1 | AMX_INT8 = 1 |")
    assert not llama_build.has_amx_kernels("CPU : SSE3 = 1 | AVX2 = 1 | FMA = 1 |")


@pytest.mark.parametrize(
    ("current", "keep", "expected"),
    [
        (None, False, "build"),
        ({"gpu": True, "system_info": "CUDA : ARCHS = 890 | AMX_INT8 = 1"}, False, "keep"),
        ({"gpu": False, "system_info": "AVX2 = 1 | AMX_INT8 = 1"}, True, "keep"),
        ({"gpu": False, "system_info": "AVX2 = 1 | AMX_INT8 = 1"}, False, "rebuild"),
        ({"gpu": False, "system_info": "AVX2 = 1 |"}, False, "keep"),
        ({"gpu": False, "mtmd": False, "system_info": "AVX2 = 1 |"}, False, "rebuild"),
        ({"gpu": False, "mtmd": False, "system_info": "AVX2 = 1 |"}, True, "keep"),
    ],
    ids=[
        "absent",
        "gpu-build",
        "kept-by-choice",
        "cpu-with-amx",
        "cpu-without-amx",
        "cpu-without-mtmd",
        "without-mtmd-kept-by-choice",
    ],
)
def test_what_the_installer_does_with_an_installed_build(current, keep, expected):
    assert llama_build.decide(current, keep) == expected


@x86_with_cc
def test_the_flags_remove_the_amx_kernels_even_for_an_amx_cpu():
    """Compile as for a Sapphire Rapids CPU: -march implies AMX, and our flags take it out."""

    def macros(*flags: str) -> str:
        done = subprocess.run(
            ["cc", *flags, "-dM", "-E", "-"], input="", capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "__AMX_INT8__" in macros("-march=sapphirerapids")
    stripped = macros("-march=sapphirerapids", *llama_build.NO_AMX_FLAGS)
    assert "__AMX_INT8__" not in stripped and "__AMX_TILE__" not in stripped
    assert "__AVX512VNNI__" in stripped  # the rest of the native SIMD stays


def test_the_installed_llama_cpp_has_no_amx_kernels_and_uses_this_cpus_simd():
    probe = llama_build.installed(sys.executable)
    assert probe is not None
    assert not llama_build.has_amx_kernels(probe["system_info"])
    if "avx2" in llama_build.cpu_flags(Path("/proc/cpuinfo").read_text()):
        assert "AVX2 = 1" in probe["system_info"]  # native, not a lowest-common build


def test_the_default_build_includes_mtmd_for_vision_models():
    """Vision models read images through libmtmd, which LLAVA_BUILD=OFF leaves out."""
    assert llama_build.DEFAULT_CMAKE_ARGS == "-DLLAVA_BUILD=ON"


def test_a_build_without_mtmd_is_kept_when_the_args_switch_it_off():
    current = {"gpu": False, "mtmd": False, "system_info": "AVX2 = 1 |"}
    assert llama_build.decide(current, False, llama_build.wants_mtmd("-DLLAVA_BUILD=OFF")) == "keep"
    assert llama_build.wants_mtmd("-DLLAVA_BUILD=ON") and llama_build.wants_mtmd("")
    assert not llama_build.wants_mtmd("-DGGML_CUDA=on -DLLAVA_BUILD=off")

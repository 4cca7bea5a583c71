"""Real OIP servers to front: MLServer 1.7 (an iris classifier trained on the spot, a text model
and an embedding model written as MLServer custom runtimes) and KServe's ModelServer (a
`kserve.Model` subclass), each run from its own venv (`.ci/peers` makes them) on a free
loopback port. Without a venv, the tests that need it skip, naming that step."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".venv-peers"

TEXT_MODEL = '''
"""A text model: chat tensors (role, content, type) in, `content` out, naming each message;
a `prompt` in, `text` out; streamed word by word; `delay` seconds of work per request."""
import asyncio, json
from mlserver import MLModel
from mlserver.codecs import StringCodec
from mlserver.types import InferenceResponse, ResponseOutput


class Text(MLModel):
    async def load(self):
        return True

    def _answer(self, payload):
        named = {i.name: StringCodec.decode_input(i) for i in payload.inputs}
        params = payload.parameters.model_dump(exclude_none=True) if payload.parameters else {}
        params.pop("headers", None)  # MLServer adds the HTTP headers
        if "prompt" in named:
            return "text", "echo: " + named["prompt"][0], params
        pairs = zip(named["role"], named["content"])
        return "content", " | ".join(f"{r}: {c}" for r, c in pairs), params

    def _response(self, payload, name, text, params):
        out = StringCodec.encode_output(name, [text])
        seen = StringCodec.encode_output("parameters", [json.dumps(params, sort_keys=True)])
        return InferenceResponse(
            model_name=self.name, id=payload.id, outputs=[out, seen]
        )

    async def predict(self, payload):
        name, text, params = self._answer(payload)
        await asyncio.sleep(float(params.get("delay", 0)))
        return self._response(payload, name, text, params)

    async def predict_stream(self, payloads):
        payload = await payloads.__anext__()
        name, text, params = self._answer(payload)
        words = text.split(" ")
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            yield InferenceResponse(
                model_name=self.name,
                id=payload.id,
                outputs=[StringCodec.encode_output(name, [piece])],
            )


class Vectors(MLModel):
    """Embeddings: `input` BYTES [N] -> `embedding` FP32 [N, 4], the same text the same vector."""

    async def load(self):
        return True

    async def predict(self, payload):
        import numpy as np
        from mlserver.codecs import NumpyCodec

        texts = StringCodec.decode_input(payload.inputs[0])
        rows = [[len(t), t.count(" "), sum(map(ord, t)) % 97, 1.0] for t in texts]
        vectors = np.asarray(rows, dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("embedding", vectors)]
        )
'''

TRAIN_IRIS = """
import sys, joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
x, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(max_iter=500).fit(x, y), sys.argv[1])
"""

KSERVE_MODEL = '''
"""A kserve.Model that adds 1 to every element of an FP32 tensor `x`, and one with chat tensors."""
import sys
import numpy as np
from kserve import Model, ModelServer
from kserve.protocol.infer_type import InferOutput, InferResponse


class PlusOne(Model):
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    def predict(self, payload, headers=None):
        x = payload.inputs[0].as_numpy()
        out = InferOutput(name="y", shape=list(x.shape), datatype="FP32")
        out.set_data_from_numpy((x + 1).astype(np.float32), binary_data=False)
        return InferResponse(
            model_name=self.name, infer_outputs=[out], response_id=payload.id
        )


if __name__ == "__main__":
    ModelServer(http_port=int(sys.argv[1]), grpc_port=int(sys.argv[2]), enable_grpc=False).start(
        [PlusOne("plus-one")]
    )
'''


def venv_python(name: str) -> Path:
    """The peer venv's python; skips, naming the setup step, when it is absent."""
    python = VENVS / name / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no {python}: run `bash .ci/peers` (part of .ci/setup) to install the peer")
    return python


def _settings(name: str, implementation: str, inputs: list[dict], **extra: object) -> str:
    return json.dumps({"name": name, "implementation": implementation, "inputs": inputs, **extra})


def mlserver_repository(folder: Path) -> Path:
    """A model repository: `iris` (sklearn, trained now, tensors declared none), `text`
    (role/content/type and prompt), `vectors` (input)."""
    python = venv_python("mlserver")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps({"parallel_workers": 0, "debug": False}))
    (folder / "models.py").write_text(TEXT_MODEL)
    iris = folder / "iris"
    iris.mkdir(exist_ok=True)
    subprocess.run([python, "-c", TRAIN_IRIS, iris / "model.joblib"], check=True)
    (iris / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "iris",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"},
            }
        )
    )
    text = [{"name": n, "datatype": "BYTES", "shape": [-1]} for n in ("role", "content", "type")]
    for name, implementation, inputs in (
        ("text", "models.Text", [*text, {"name": "prompt", "datatype": "BYTES", "shape": [-1]}]),
        ("vectors", "models.Vectors", [{"name": "input", "datatype": "BYTES", "shape": [-1]}]),
    ):
        (folder / name).mkdir(exist_ok=True)
        (folder / name / "model-settings.json").write_text(_settings(name, implementation, inputs))
    return folder


def _wait(url: str, process: subprocess.Popen, log: Path, ready: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + ready, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{url} not ready after {timeout} s:\n{log.read_text()[-3000:]}")


@contextmanager
def _serving(command: list, cwd: Path, url: str, ready: list[str], env: dict) -> Iterator[str]:
    log = cwd / "peer.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    try:
        for path in ready:  # every model: they load in no fixed order
            _wait(url, process, log, path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def mlserver(folder: Path) -> Iterator[str]:
    """MLServer serving mlserver_repository(folder); its base URL."""
    repository = mlserver_repository(folder)
    port = free_port()
    env = {
        "MLSERVER_HTTP_PORT": str(port),
        "MLSERVER_GRPC_PORT": str(free_port()),
        "MLSERVER_METRICS_PORT": str(free_port()),
        "MLSERVER_HOST": "127.0.0.1",
        "PYTHONPATH": str(repository),
    }
    bin_dir = venv_python("mlserver").parent
    with _serving(
        [bin_dir / "mlserver", "start", repository],
        repository,
        f"http://127.0.0.1:{port}",
        [f"/v2/models/{name}/ready" for name in ("iris", "text", "vectors")],
        env,
    ) as url:
        yield url


@contextmanager
def kserve(folder: Path) -> Iterator[str]:
    """KServe's ModelServer serving `plus-one`; its base URL."""
    python = venv_python("kserve")
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "plus_one.py"
    script.write_text(KSERVE_MODEL)
    port = free_port()
    with _serving(
        [python, script, str(port), str(free_port())],
        folder,
        f"http://127.0.0.1:{port}",
        ["/v2/models/plus-one/ready"],
        {},
    ) as url:
        yield url

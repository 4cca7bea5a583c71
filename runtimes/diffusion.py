"""diffusers runtime: text-to-image with prompt, negative prompt, size, steps, guidance, seed, n."""

from __future__ import annotations

import gc
import io
import random

import torch
from diffusers import DiffusionPipeline
from localoip.runtimes.capabilities import (
    GeneratedImage,
    ImageRequest,
    Runtime,
    StepCallback,
)
from localoip.runtimes.devices import torch_device
from localoip.runtimes.facts import ModelFacts, disk_size
from localoip.runtimes.options import DiffusersOptions


class DiffusersRuntime(Runtime):
    options: DiffusersOptions

    def __init__(self, path: str, options: DiffusersOptions) -> None:
        super().__init__(path, options)
        self._pipe: DiffusionPipeline | None = None
        self.device = "cpu"  # where the pipeline runs: the `device` option, "auto" resolved

    def load(self) -> None:
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        pipe = DiffusionPipeline.from_pretrained(
            self.path, dtype=getattr(torch, self.options.dtype)
        )
        pipe.set_progress_bar_config(disable=True)
        self.device = torch_device(self.options.device)
        self._pipe = pipe.to(self.device)

    def unload(self) -> None:
        """Drop the model, and collect what cycles its torch modules held, so its tensors are
        freed now rather than at the next full collection."""
        self._pipe = None
        gc.collect()

    def facts(self) -> ModelFacts:
        """The pipeline's dtype and the bytes of its folder; images have no context length."""
        return ModelFacts(quantization=self.options.dtype, file_size=disk_size(self.path))

    @property
    def pipe(self) -> DiffusionPipeline:
        if self._pipe is None:
            raise RuntimeError("model is not loaded")
        return self._pipe

    def generate_images(
        self, request: ImageRequest, on_step: StepCallback | None = None
    ) -> list[GeneratedImage]:
        opts = self.options
        steps = request.steps or opts.steps
        seed = request.seed if request.seed is not None else random.randrange(2**31)

        def step_end(pipe, step: int, timestep, tensors: dict) -> dict:
            if on_step is not None:
                on_step(step + 1, steps)
            return tensors

        # One generator per image, so image i of seed s is reproducible on its own as seed s+i.
        generators = [torch.Generator(self.device).manual_seed(seed + i) for i in range(request.n)]
        result = self.pipe(
            prompt=[request.prompt] * request.n,
            negative_prompt=[request.negative_prompt] * request.n
            if request.negative_prompt
            else None,
            width=request.width or opts.width,
            height=request.height or opts.height,
            num_inference_steps=steps,
            guidance_scale=request.guidance_scale
            if request.guidance_scale is not None
            else opts.guidance_scale,
            generator=generators,
            callback_on_step_end=step_end,
        )
        images = []
        for i, image in enumerate(result.images):
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            images.append(GeneratedImage(png=buffer.getvalue(), seed=seed + i))
        return images

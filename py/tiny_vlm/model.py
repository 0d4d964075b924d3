"""FastVLM: the loaded model (config, tokenizer, image processor, tower, projector, decoder).

    model = FastVLM.load("models/<name>")        # directory or .safetensors file
    text = model.generate(image, "Describe this image.", max_tokens=32)
    for delta in model.stream(image, "What objects are visible?"):
        print(delta, end="")
"""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import numpy as np

from . import kernels as K
from .config import ModelConfig
from .generate import Session
from .image import ImageProcessor
from .lm import LanguageModel
from .projector import Projector
from .tokenizer import Tokenizer
from .vision import VisionTower
from .weights import Weights, WeightsError, load_weights

IMAGE_SENTINEL = -200  # FastVLM's IMAGE_TOKEN_INDEX: where the image embeddings go


class ModelFileError(ValueError):
    """The model path does not hold a usable model; the message names what is missing."""


def find_model_files(path) -> tuple[Path, Path | None, Path | None]:
    """(weights file, tokenizer.json or None, labels.json or None) for a file or directory."""
    p = Path(path)
    if p.is_dir():
        candidates = [p / "model.safetensors"] if (p / "model.safetensors").is_file() else sorted(p.glob("*.safetensors"))
        if len(candidates) != 1:
            found = [c.name for c in candidates]
            raise ModelFileError(f"{p}: expected model.safetensors or exactly one *.safetensors, found {found or 'none'}")
        weights_path, folder = candidates[0], p
    elif p.is_file():
        weights_path, folder = p, p.parent
    else:
        raise ModelFileError(f"model path {p} does not exist")
    tok = folder / "tokenizer.json"
    labels = folder / "labels.json"
    return weights_path, tok if tok.is_file() else None, labels if labels.is_file() else None


def prompt_ids(tokenizer: Tokenizer, template: str, prompt: str) -> tuple[list[int], list[int]]:
    """Token ids before and after `<image>` in `template`: its text with special tokens, `prompt` as plain text."""
    ids = []
    for part in template.split("<image>"):
        head, _, tail = part.partition("{prompt}")
        piece = tokenizer.encode(head)
        if "{prompt}" in part:
            piece += tokenizer.encode(prompt, allow_special=False) + tokenizer.encode(tail)
        ids.append(piece)
    return ids[0], ids[1]


class FastVLM:
    """A FastVLM-architecture model ready for generation."""

    def __init__(self, weights: Weights, tokenizer: Tokenizer, backend: K.Backend | None = None, labels=None) -> None:
        self.config: ModelConfig = weights.config
        self.quant = weights.quant
        self.metadata = weights.metadata
        self.n_params = weights.n_params
        self.labels = labels
        self.backend = backend or K.Backend()
        self.tokenizer = tokenizer
        self.processor = ImageProcessor(self.config.vision, self.backend)
        self.vision = VisionTower(self.config.vision, weights.tensors, self.backend)
        self.projector = Projector(self.config.projector, weights.tensors, self.backend)
        self.lm = LanguageModel(self.config.lm, weights.tensors, self.backend)
        self.eos_ids = frozenset(i for i in (tokenizer.token_to_id(t) for t in self.config.eos_tokens) if i is not None)
        if not self.eos_ids:
            raise ModelFileError(f"tokenizer knows none of the eos tokens {self.config.eos_tokens}")
        if tokenizer.vocab_size > self.config.lm.vocab_size:
            raise ModelFileError(f"tokenizer has {tokenizer.vocab_size} ids but lm.vocab_size is {self.config.lm.vocab_size}")
        # Logit rows with no token (a converted Qwen2 has 151,936 rows for 151,665 tokens): never sampled.
        known = np.zeros(self.config.lm.vocab_size, dtype=bool)
        known[np.fromiter(tokenizer.id_to_token, dtype=np.int64)] = True
        self.invalid_ids = None if known.all() else ~known
        # One model, several threads: the LM's scratch buffers serve one pass at a time.
        self.lock = threading.Lock()

    @classmethod
    def load(cls, path, backend: K.Backend | None = None) -> "FastVLM":
        """Load a model directory (model.safetensors, tokenizer.json, labels.json) or one weights file."""
        weights_path, tok_path, labels_path = find_model_files(path)
        weights = load_weights(weights_path)
        if tok_path is not None:
            tokenizer = Tokenizer.from_file(tok_path)
        elif weights.tokenizer_json is not None:
            tokenizer = Tokenizer.from_json(weights.tokenizer_json)
        else:
            raise ModelFileError(f"{weights_path}: no tokenizer (no 'tokenizer' metadata and no tokenizer.json beside it)")
        labels = None
        if labels_path is not None:
            try:
                with open(labels_path, encoding="utf-8") as f:
                    labels = json.load(f)
            except (OSError, ValueError) as err:  # the runtime does not need the labels: say so and go on
                warnings.warn(f"{labels_path}: not read ({err}); the model loads without its labels", stacklevel=2)
        return cls(weights, tokenizer, backend, labels)

    # ------------------------------------------------------------ pipeline parts

    def encode_image(self, pixels):  # [S, S, 3] -> [N_img, D]
        return self.projector(self.vision(pixels))

    def prompt_ids(self, prompt: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the image: template text with special tokens, user text without."""
        return prompt_ids(self.tokenizer, self.config.prompt_template, prompt)

    def prompt_embeddings(self, image_embeds, prompt: str, ids=None):  # [N_img, D] -> [T, D]
        before, after = ids if ids is not None else self.prompt_ids(prompt)
        embeds = np.concatenate([self.lm.embed(before), image_embeds.astype(np.float32), self.lm.embed(after)])
        if embeds.shape[0] >= self.config.lm.max_seq_len:
            raise ValueError(f"prompt of {embeds.shape[0]} positions leaves no room to generate (lm.max_seq_len {self.config.lm.max_seq_len})")
        return embeds

    # ------------------------------------------------------------ generation

    def session(self, image, prompt: str | None = None, *, max_tokens: int = 32, temperature: float = 0.0, top_k: int = 0,
                top_p: float = 1.0, seed: int = 0, width: int | None = None, height: int | None = None, stop=()) -> Session:
        """A step-by-step generation session (see generate.Session)."""
        return Session(self, image, prompt, max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                       seed=seed, width=width, height=height, stop=stop)

    def generate(self, image, prompt: str | None = None, max_tokens: int = 32, **options) -> str:
        """The whole answer as one string. options: temperature, top_k, top_p, seed, width, height, stop."""
        s = self.session(image, prompt, max_tokens=max_tokens, **options)
        while not s.done:
            s.step()
        return s.text

    def stream(self, image, prompt: str | None = None, max_tokens: int = 32, **options):
        """Yield the answer's text deltas as they are decoded (same options as generate)."""
        s = self.session(image, prompt, max_tokens=max_tokens, **options)
        while not s.done:
            delta = s.step()
            if delta:
                yield delta

    def info(self) -> dict:
        """Summary for `python -m tiny_vlm info` and the web app's ready message."""
        c = self.config
        return {"name": c.name, "params": self.n_params, "quant": self.quant, "image_size": c.vision.image_size,
                "image_tokens": c.vision.n_tokens, "d_model": c.lm.d_model, "n_layers": c.lm.n_layers,
                "vocab_size": c.lm.vocab_size, "tokenizer_size": self.tokenizer.vocab_size,
                "max_seq_len": c.lm.max_seq_len, "backend": self.backend.name,
                "about": self.metadata.get("about")}  # what the model can see, for its users (None: not said)

    def __repr__(self) -> str:
        return f"FastVLM({self.config.name!r}, params={self.n_params}, quant={self.quant.get('scheme')!r})"


__all__ = ["FastVLM", "ModelFileError", "find_model_files", "prompt_ids", "IMAGE_SENTINEL", "WeightsError"]

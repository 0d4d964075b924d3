"""tiny-vlm: a tiny FastVLM-architecture vision-language model in pure Python + NumPy.

    from tiny_vlm import FastVLM
    model = FastVLM.load("models/<name>")
    print(model.generate(image, "Describe this image."))
"""

from .config import ConfigError, LMConfig, ModelConfig, ProjectorConfig, VisionConfig, tensor_shapes
from .generate import Session
from .image import ImageError, ImageProcessor
from .kernels import Backend
from .model import FastVLM, ModelFileError
from .sampling import Sampler
from .tokenizer import IncrementalDecoder, Tokenizer, TokenizerError
from .weights import Weights, WeightsError, load_weights, save_weights

__version__ = "0.1.0"

__all__ = [
    "Backend", "ConfigError", "FastVLM", "ImageError", "ImageProcessor", "IncrementalDecoder", "LMConfig",
    "ModelConfig", "ModelFileError", "ProjectorConfig", "Sampler", "Session", "Tokenizer", "TokenizerError",
    "VisionConfig", "Weights", "WeightsError", "load_weights", "save_weights", "tensor_shapes",
]

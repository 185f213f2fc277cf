"""InfoGAN on MNIST: training, ONNX export, Triton serving and a torch-free client."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("infogan")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

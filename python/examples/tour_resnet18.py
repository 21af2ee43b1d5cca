"""The BlindAI tour in Python: export a torchvision ResNet18 (random weights, nothing downloaded), draw an image,
preprocess it with torchvision transforms, attest the server, upload, predict, print the top class.

    blindai serve --tee simulated --write-policy policy.json     # in another terminal
    python python/examples/tour_resnet18.py [--server localhost:8000] [--policy policy.json]
"""

import argparse

import numpy as np
import torch

try:
    import torchvision
except RuntimeError:  # PyPI's torchvision beside the CPU-only torch wheel: its C++ ops do not load, and
    import sys        # a classification model never needs them, so declare their schemas and import again
    for op in ("nms", "qnms"):
        torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    for name in [m for m in sys.modules if m.startswith("torchvision")]:
        del sys.modules[name]
    import torchvision
from PIL import Image, ImageDraw
from torchvision import transforms

import blindai

parser = argparse.ArgumentParser()
parser.add_argument("--server", default="localhost:8000")
parser.add_argument("--policy", default="policy.json")
args = parser.parse_args()

# 1. Export the model to ONNX.
torch.manual_seed(0)
model = torchvision.models.resnet18(weights=None).eval()
torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), "resnet18.onnx", dynamo=False, opset_version=17,
                  input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})

# 2. An image (drawn here, so there is nothing to download), preprocessed as for ImageNet.
image = Image.new("RGB", (320, 240), (235, 230, 210))
draw = ImageDraw.Draw(image)
draw.ellipse((90, 40, 250, 200), fill=(200, 40, 30), outline=(60, 20, 10), width=6)
draw.rectangle((150, 10, 170, 50), fill=(70, 120, 40))
preprocess = transforms.Compose([
    transforms.Resize(256),
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
])
input_batch = preprocess(image).unsqueeze(0)  # [1, 3, 224, 224] float32

# 3. Attest the server (nothing else is sent before the evidence satisfies the policy and is bound to the TLS key
#    of the connection), upload the model, run it on the image.
with blindai.connect(args.server, policy=args.policy) as conn:
    print("attested:", conn.attestation.tee, "measurement", conn.attestation.measurement[:16] + "…",
          "(simulated)" if conn.attestation.simulated else "")
    uploaded = conn.upload_model(model="resnet18.onnx", model_name="resnet18")
    print(f"uploaded {uploaded.name} version {uploaded.version}, sha256 {uploaded.sha256[:16]}…")
    response = conn.predict("resnet18", input_batch)
    logits = response.output[0].as_torch()
    top = torch.topk(logits[0].softmax(0), 3)
    print("top class:", int(top.indices[0]), "probabilities of the top 3:",
          [(int(i), round(float(p), 4)) for p, i in zip(top.values, top.indices)])
    with torch.no_grad():
        local = model(input_batch)
    print("max |server - local torch| logit difference:", float((logits - local).abs().max()))
    conn.delete_model("resnet18")

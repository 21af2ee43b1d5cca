"""The tour with nothing but numpy: the repository's demo model (demo/digits.onnx, 8x8 handwritten digits) and its
held-out samples.

    blindai serve --tee simulated --write-policy policy.json     # in another terminal
    python python/examples/tour_digits.py [--server localhost:8000] [--policy policy.json]
"""

import argparse
import pathlib

import numpy as np

import blindai

demo = pathlib.Path(__file__).resolve().parents[2] / "demo"
parser = argparse.ArgumentParser()
parser.add_argument("--server", default="localhost:8000")
parser.add_argument("--policy", default="policy.json")
args = parser.parse_args()

with blindai.connect(args.server, policy=args.policy) as conn:
    model = conn.upload_model(model=demo / "digits.onnx")  # named "digits" after the file
    correct = 0
    samples = sorted((demo / "samples").glob("digit_*.npy"))
    for path in samples:
        image = np.load(path)  # float32 [1, 1, 8, 8], already scaled to [0, 1]
        logits = conn.predict(model.name, image).output[0].as_numpy()
        label, predicted = int(path.stem.split("_")[1]), int(logits.argmax())
        correct += predicted == label
        print(f"{path.name}: predicted {predicted}")
    print(f"{correct} of {len(samples)} correct")
    print("models on the server:", [m["name"] for m in conn.models()])
    conn.delete_model(model.name)

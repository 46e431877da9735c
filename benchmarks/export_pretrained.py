"""Copy a training checkpoint into data/ without its optimizer/resume state (small file).

    python benchmarks/export_pretrained.py /path/to/point.pt data/point.pt
"""
import sys

from mtlneuron import surrogate as model


def main(src, dst):
    ckpt = model.read_checkpoint(src)
    ckpt.pop("resume", None)  # optimizer moments, RNG state: only needed to continue training
    model.write_checkpoint(ckpt, dst)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

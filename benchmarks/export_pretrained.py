"""Copy a training checkpoint into data/ without its optimizer/resume state (small file).

    python benchmarks/export_pretrained.py /path/to/point.pt data/point.pt
    python benchmarks/export_pretrained.py l5pc_ft.pt data/l5pc.pt --waveforms-from train.nc [more.nc ...]

``--waveforms-from`` learns the spike waveforms (``mtl.train.fit_spike_waveforms``)
of a model trained before they existed, on the checkpoint's own training trials
of those files (the same files, in the same order, as it was trained on).
"""
import argparse

import torch

import mtlneuron as mtl
from mtlneuron import surrogate as model


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--waveforms-from", nargs="+", help="the training datasets of src (same order)")
    p.add_argument("--exclude-stages", default="", help="as in training (comma list)")
    a = p.parse_args()
    torch.set_num_threads(1)
    ckpt = model.read_checkpoint(a.src)
    ckpt.pop("resume", None)  # optimizer moments, RNG state: only needed to continue training
    if a.waveforms_from:
        from mtlneuron.training.data import concat_arrays, load_arrays, open_datasets, select_stages

        surrogate = mtl.Surrogate.from_checkpoint(ckpt)
        exclude = [s for s in a.exclude_stages.split(",") if s]
        arrays = concat_arrays([load_arrays(select_stages(d, exclude)) for d in open_datasets(a.waveforms_from)])
        mtl.train.fit_spike_waveforms(surrogate, arrays, ckpt["training"]["split"]["train"])
        fresh = surrogate.checkpoint()  # the new weights and their hash; everything else stays the source's
        ckpt["state_dict"], ckpt["weights_sha256"] = fresh["state_dict"], fresh["weights_sha256"]
    model.write_checkpoint(ckpt, a.dst)
    print(f"wrote {a.dst}")


if __name__ == "__main__":
    main()

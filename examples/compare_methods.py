"""Three attention methods on one prompt, on the GPU, and their frontier: exact attention (full), SnapKV
keeping a tenth, a quarter and half of the context's KV entries, and ADA (attention on representative
tokens) at tau 0.1, 0.3 and 0.5. The prompt's context is prefilled in one pass (where SnapKV compresses
the cache and ADA selects), then its last TAIL tokens run on that cache; at each of them the next-token
distribution is compared with full's: top-1 agreement, KL(full || method) and total variation. Each
configuration's kept fraction: SnapKV's budget (every KV head keeps that share of the context), ADA's
representatives over the context averaged over layers (Model.trace of the same context).

    scripts/get-models                                  # SmolLM2-135M-Instruct (Q4_1 GGUF) into the cache
    python3 examples/compare_methods.py                 # on cuda, bf16
    python3 examples/compare_methods.py --device cpu    # the same on the CPU (f32)
    python3 examples/compare_methods.py --model models/stories260K/stories260K.bin --plot out/compare.png

The logits come back as torch CUDA tensors (DLPack, no copy) when torch is installed, else as DLPack
arrays; either way they are compared here on the host. With matplotlib, the plot shows the frontier
(mean KL against kept fraction, a line per method) beside the per-position KL at SnapKV 0.25 and ADA
tau 0.3. One prompt: a demonstration of the API, not a measurement (`cascade study` is that).
"""

import argparse
from pathlib import Path

import numpy as np

import cascade

DEFAULT_MODEL = Path.home() / ".cache" / "cascade" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = (
    "The lighthouse keeper had lived on the island for thirty years. Every evening he climbed the "
    "spiral stairs, polished the great lens and lit the lamp, and every morning he wrote the weather "
    "in a leather notebook: the wind, the height of the waves, the ships that passed. One winter a "
    "storm cut the island off for eleven days. The supply boat could not land, the radio failed, and "
    "the keeper rationed his candles and his tea. On the twelfth morning the sea was calm, and he saw "
    "a small boat rowing towards the jetty. In it sat a girl of about ten, soaked and shivering, who "
    "said that her father's fishing boat had sunk in the storm and that she had rowed all night. The "
    "keeper wrapped her in a blanket, made her a cup of tea, and asked her"
)
METHODS = {"full": dict(attention="full")}
METHODS.update({f"snapkv@{b}": dict(attention="snapkv", kv_budget=b) for b in (0.1, 0.25, 0.5)})
METHODS.update({f"ada@tau={t}": dict(attention="ada", tau=t) for t in (0.1, 0.3, 0.5)})
SHOWN = ("snapkv@0.25", "ada@tau=0.3")  # the per-position panel


def host(logits):
    """Logits as a float64 NumPy array, wherever they live."""
    if hasattr(logits, "cpu"):  # a torch tensor
        return logits.cpu().double().numpy()
    if hasattr(logits, "__dlpack__") and logits.__dlpack_device__()[0] != 1:  # a CUDA DLPack array, no torch
        import cupy

        return cupy.asnumpy(cupy.from_dlpack(logits)).astype(np.float64)
    return np.asarray(logits, dtype=np.float64)


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def kept_fraction(model, context, kw):
    """The share of the context's KV entries a configuration attends to after the prefill."""
    if kw["attention"] == "full":
        return 1.0
    if kw["attention"] == "ada":
        layers = model.trace(context, **kw)
        return float(np.mean([len(layer["reps"]) for layer in layers])) / len(context)
    return kw["kv_budget"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="checkpoint (default: SmolLM2 from scripts/get-models)")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--dtype", default=None, help="f32 | fp16 | bf16 (default: bf16 on cuda, f32 on cpu)")
    p.add_argument("--tail", type=int, default=16, help="prompt tokens scored on the context's cache")
    p.add_argument("--plot", default="out/compare_methods.png", help="where to save the plot (needs matplotlib)")
    args = p.parse_args()

    model = cascade.load(args.model, device=args.device, dtype=args.dtype)
    ids = model.tokenize(PROMPT)
    if len(ids) <= args.tail + 1:
        p.error(f"the prompt has {len(ids)} tokens, too few for --tail {args.tail}")
    context, tail = ids[: -args.tail], ids[-args.tail :]
    print(f"{Path(args.model).name} on {model.device} ({model.dtype}): context {len(context)} tokens, "
          f"{len(tail)} scored after it")
    logp = {name: log_softmax(host(model.logits(tail, context=context, **kw))) for name, kw in METHODS.items()}

    full = logp["full"]
    kl, kept = {}, {}
    print(f"{'method':<13} {'kept':>6} {'top-1 = full':>13} {'KL(full||m)':>12} {'TV':>8}")
    for name, lp in logp.items():
        kept[name] = kept_fraction(model, context, METHODS[name])
        agree = np.mean(lp.argmax(-1) == full.argmax(-1))
        kl[name] = (np.exp(full) * (full - lp)).sum(-1)
        tv = 0.5 * np.abs(np.exp(full) - np.exp(lp)).sum(-1)
        print(f"{name:<13} {kept[name]:6.3f} {agree:13.1%} {kl[name].mean():12.4g} {tv.mean():8.4f}")
    nxt = int(full[-1].argmax())
    print(f"full's next token after the prompt: {model.detokenize([nxt])!r}")

    try:
        import matplotlib
    except ImportError:
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (front, per) = plt.subplots(1, 2, figsize=(11, 3.8))
    for method in ("snapkv", "ada"):  # full sits at (1, 0), off the logarithmic axis
        names = sorted((n for n in METHODS if n.startswith(method + "@")), key=lambda n: kept[n])
        front.plot([kept[n] for n in names], [max(kl[n].mean(), 1e-12) for n in names], "o-", label=method)
        for n in names:
            front.annotate(n.split("@")[1], (kept[n], max(kl[n].mean(), 1e-12)), fontsize=7,
                           textcoords="offset points", xytext=(3, 3))
    front.set_yscale("log")
    front.set_xlabel("kept fraction of the context's KV entries")
    front.set_ylabel("mean KL(full || method), nats")
    front.set_title("frontier on this prompt")
    front.legend()
    positions = np.arange(len(context), len(ids))
    for name in SHOWN:
        per.plot(positions, np.maximum(kl[name], 1e-12), "o-", label=name)
    per.set_yscale("log")
    per.set_xlabel("prompt position (after the prefilled context)")
    per.set_ylabel("KL(full || method), nats")
    per.set_title(f"{Path(args.model).name}, {model.device} {model.dtype}")
    per.legend()
    fig.tight_layout()
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=120)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
